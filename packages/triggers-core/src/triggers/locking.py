"""Leases: how a session lock excludes other holders, and how it ends.

A session lock is a *lease*: the holder owns it for ``ttl`` seconds, after
which another holder may take it over, so a crashed process cannot block a
session forever. Each acquisition gets a fresh random ``token``; a backend
releases (or renews) a lease only while the stored token is still its own,
and refuses a save from a holder whose token was replaced (fencing).

:class:`LocalLeaseTable` implements leases for one process. It serves the
in-memory backend and every backend that implements only the two documented
methods (which have no native lock of their own): such backends are safe
across threads of one process, and say so through their capabilities.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass

from triggers.errors import LockTimeoutError

__all__ = ["Clock", "Lease", "LocalLeaseTable", "LockAcquisitionFailed", "backoff_delays", "poll_until"]

Clock = Callable[[], float]
"""Seconds since the epoch, like :func:`time.time`; injectable in tests."""


@dataclass(frozen=True)
class Lease:
    """One acquisition of a session lock.

    ``expires_at`` is measured by the acquiring backend's clock. Backends that
    judge expiry on the server (a TTL on a key) may ignore it and use ``ttl``.
    """

    uid: str
    token: str
    ttl: float
    acquired_at: float
    expires_at: float

    @classmethod
    def new(cls, uid: str, ttl: float, clock: Clock) -> Lease:
        now = clock()
        return cls(uid=uid, token=secrets.token_hex(16), ttl=ttl, acquired_at=now, expires_at=now + ttl)

    def renewed(self, clock: Clock) -> Lease:
        now = clock()
        return Lease(self.uid, self.token, self.ttl, self.acquired_at, now + self.ttl)

    def expired(self, clock: Clock) -> bool:
        return clock() >= self.expires_at


class LocalLeaseTable:
    """Process-wide leases keyed by any hashable (usually ``(store, uid)``)."""

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._leases: dict[Hashable, tuple[str, float]] = {}

    def try_acquire(self, key: Hashable, lease: Lease, now: float) -> bool:
        """Take the lease if it is free, expired, or already ours."""
        with self._mutex:
            current = self._leases.get(key)
            if current is not None and current[0] != lease.token and current[1] > now:
                return False
            self._leases[key] = (lease.token, lease.expires_at)
            return True

    def renew(self, key: Hashable, lease: Lease) -> bool:
        """Extend our lease; False if it was taken over."""
        with self._mutex:
            current = self._leases.get(key)
            if current is None or current[0] != lease.token:
                return False
            self._leases[key] = (lease.token, lease.expires_at)
            return True

    def holds(self, key: Hashable, token: str) -> bool:
        """True while ``token`` is the registered holder (expired or not)."""
        with self._mutex:
            current = self._leases.get(key)
            return current is not None and current[0] == token

    def live_holder(self, key: Hashable, now: float) -> str | None:
        """The token of the lease on ``key`` that has not expired at ``now``, if any."""
        with self._mutex:
            current = self._leases.get(key)
            return current[0] if current is not None and current[1] > now else None

    def release(self, key: Hashable, token: str) -> None:
        """Release only if we still hold it: never free a lease taken over."""
        with self._mutex:
            current = self._leases.get(key)
            if current is not None and current[0] == token:
                del self._leases[key]


LOCAL_LEASES = LocalLeaseTable()
"""The leases of this process, shared by every process-local backend."""

LockAcquisitionFailed = LockTimeoutError
"""Triggers 2.0's name for :class:`~triggers.errors.LockTimeoutError`, kept for ported code.

Triggers 2.0 raised it when ``acquire_lock(block=False)`` found the lock
taken; here ``storage.acquire_lock(timeout=0)`` raises it then, and any wait
that runs out raises it too.
"""


def backoff_delays(first_delay: float = 0.005, max_delay: float = 0.1) -> Iterator[float]:
    """Endless waits between retries: doubling from ``first_delay`` up to
    ``max_delay``, each jittered to between half and one and a half times.

    The jitter keeps many waiters on one session from retrying in lock step.
    """
    delay = first_delay
    while True:
        yield delay * (0.5 + random.random())  # jitter, not crypto
        delay = min(max_delay, delay * 2)


def poll_until(
    attempt: Callable[[], bool],
    *,
    timeout: float,
    first_delay: float = 0.005,
    max_delay: float = 0.1,
    sleep: Callable[[float], None] = time.sleep,
    monotonic: Callable[[], float] = time.monotonic,
) -> bool:
    """Call ``attempt`` until it returns True or ``timeout`` seconds pass.

    Waits follow :func:`backoff_delays`. Returns whether ``attempt`` succeeded.
    """
    deadline = monotonic() + timeout
    delays = backoff_delays(first_delay, max_delay)
    while True:
        if attempt():
            return True
        remaining = deadline - monotonic()
        if remaining <= 0:
            return False
        sleep(min(remaining, next(delays)))
