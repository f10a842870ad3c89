"""Run leases: a running instance belongs to its runner only for a while.

A worker that is killed while its task runs (SIGKILL, a lost machine) cannot
record the outcome, so without more the instance would stay ``running``
forever: nothing may run it again, since the worker might still be alive. A
run lease settles that. When an instance starts running, its metadata records
the **attempt** (1 for the first run, counting every start) and when the lease
ends (``runLeaseExpires``, by the storage's clock). While the task runs, a
heartbeat renews the lease every third of its length. Once it has ended, the
instance is runnable again:

* a redelivered or duplicate message (:meth:`TriggerManager.run_instance
  <triggers.manager.TriggerManager.run_instance>`) takes it over as the next
  attempt, and
* :meth:`TriggerManager.resume <triggers.manager.TriggerManager.resume>`
  sets it back to ``scheduled`` and hands it to its runner.

Either way the attempt whose lease ran out is appended to
``expiredAttempts``. An outcome is recorded only by the attempt that holds
the instance, so a worker that was merely slow (and lost its lease) cannot
record a second outcome or cascade a second time: state transitions and
cascades happen exactly once; the task body runs at least once.

An instance that is ``running`` without a lease (a task that handed its work
to another system with ``context.set_status("running")``, or a record written
before run leases existed) is never taken over; an operator sets its status.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from triggers.errors import TriggersError
from triggers.types import InstanceStatus, TaskInstance

if TYPE_CHECKING:
    from triggers.manager import TriggerManager

__all__ = [
    "ATTEMPT_KEY",
    "DEFAULT_RUN_LEASE_TTL",
    "EXPIRED_ATTEMPTS_KEY",
    "RUN_LEASE_EXPIRES_KEY",
    "attempt_of",
    "expired",
    "expires_at",
    "heartbeat",
    "held_by",
    "note_expired",
    "release",
    "remaining",
    "renew",
    "start",
]

logger = logging.getLogger(__name__)

ATTEMPT_KEY = "attempt"
"""Instance metadata: how many times the instance was started (1 for the first run)."""
RUN_LEASE_EXPIRES_KEY = "runLeaseExpires"
"""Instance metadata: when the run lease of the running attempt ends (a UTC datetime)."""
EXPIRED_ATTEMPTS_KEY = "expiredAttempts"
"""Instance metadata: the attempts whose run lease ran out before they recorded an outcome."""

DEFAULT_RUN_LEASE_TTL = 60.0
"""Seconds a run lease lasts unless renewed; a killed worker's task is runnable again after it."""


def attempt_of(instance: TaskInstance) -> int:
    """The instance's latest attempt (0 if it never started)."""
    attempt = instance.metadata.get(ATTEMPT_KEY, 0)
    return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 0


def expires_at(instance: TaskInstance) -> datetime | None:
    """When the running attempt's lease ends; None if the instance holds no lease."""
    moment = instance.metadata.get(RUN_LEASE_EXPIRES_KEY)
    return moment if isinstance(moment, datetime) else None


def remaining(instance: TaskInstance, now: datetime) -> float | None:
    """Seconds left of a running instance's lease (0 once ended); None without one."""
    ends = expires_at(instance)
    if instance.status is not InstanceStatus.RUNNING or ends is None:
        return None
    return max(0.0, (ends - now).total_seconds())


def expired(instance: TaskInstance, now: datetime) -> bool:
    """True if the instance is running on a lease that has ended: it may run again."""
    return remaining(instance, now) == 0.0


def held_by(instance: TaskInstance, attempt: int) -> bool:
    """True while ``attempt`` is the running attempt (so it may record the outcome)."""
    return instance.status is InstanceStatus.RUNNING and attempt_of(instance) == attempt


def note_expired(instance: TaskInstance) -> None:
    """Record that the running attempt's lease ran out (before it is taken over)."""
    history = instance.metadata.get(EXPIRED_ATTEMPTS_KEY)
    attempts = list(history) if isinstance(history, list) else []
    attempts.append(attempt_of(instance))
    instance.metadata[EXPIRED_ATTEMPTS_KEY] = attempts


def start(instance: TaskInstance, now: datetime, ttl: float) -> int:
    """Start the next attempt (called as the instance becomes running); returns it.

    Taking over a running instance whose lease ended records the old attempt
    in ``expiredAttempts`` first.
    """
    if instance.status is InstanceStatus.RUNNING:
        note_expired(instance)
    attempt = attempt_of(instance) + 1
    instance.metadata[ATTEMPT_KEY] = attempt
    instance.metadata[RUN_LEASE_EXPIRES_KEY] = now + timedelta(seconds=ttl)
    return attempt


def release(instance: TaskInstance) -> None:
    """Drop the lease (the attempt ended, or handed its work elsewhere)."""
    instance.metadata.pop(RUN_LEASE_EXPIRES_KEY, None)


def renew(manager: TriggerManager, instance_name: str, attempt: int, ttl: float) -> bool:
    """Extend ``attempt``'s lease by ``ttl`` from now, in one transaction of the session.

    False (and nothing saved) if the attempt no longer holds the instance:
    it finished, or its lease ran out and another attempt took over.
    """
    storage = manager.storage

    def extend() -> bool:
        instance = storage[instance_name]
        if not held_by(instance, attempt) or expires_at(instance) is None:
            return False
        instance.metadata[RUN_LEASE_EXPIRES_KEY] = storage.now() + timedelta(seconds=ttl)
        return True

    return storage.transact(extend)


# ----------------------------------------------------------------------
# The heartbeat: one daemon thread per process renews every running lease
# ----------------------------------------------------------------------


@dataclass(eq=False)
class _Beat:
    manager: TriggerManager
    instance_name: str
    attempt: int
    ttl: float
    due: float = field(default=0.0)  # time.monotonic() of the next renewal
    renewals: int = 0


class _Heartbeats:
    """Renews the leases of the tasks running in this process, each every ``ttl / 3``.

    One thread serves every task, so a short task costs a dictionary entry,
    not a thread. The thread is started on first use in each process (a
    forked worker starts its own).
    """

    def __init__(self) -> None:
        self._reset()

    def _reset(self) -> None:
        self._condition = threading.Condition()
        self._beats: set[_Beat] = set()
        self._thread: threading.Thread | None = None

    def add(self, beat: _Beat) -> None:
        beat.due = time.monotonic() + beat.ttl / 3
        with self._condition:
            self._beats.add(beat)
            if self._thread is None:
                self._thread = threading.Thread(target=self._loop, name="triggers-heartbeat", daemon=True)
                self._thread.start()
            self._condition.notify()

    def remove(self, beat: _Beat) -> None:
        with self._condition:
            self._beats.discard(beat)

    def _loop(self) -> None:
        while True:
            with self._condition:
                now = time.monotonic()
                due = [beat for beat in self._beats if beat.due <= now]
                if not due:
                    wait = min((beat.due for beat in self._beats), default=now + 60) - now
                    self._condition.wait(timeout=wait)
                    continue
            for beat in due:
                self._beat(beat)

    def _beat(self, beat: _Beat) -> None:
        try:
            held = renew(beat.manager, beat.instance_name, beat.attempt, beat.ttl)
        except TriggersError as exc:  # an outage: try again soon, the lease may still hold
            logger.warning("session %r: could not renew the run lease of %s (attempt %d): %s",
                           beat.manager.storage.uid, beat.instance_name, beat.attempt, exc)
            held = True
        except Exception:
            logger.exception("session %r: the heartbeat of %s failed",
                             beat.manager.storage.uid, beat.instance_name)
            held = True
        if held:
            beat.renewals += 1
            beat.due = time.monotonic() + beat.ttl / 3
        else:
            logger.info("session %r: %s attempt %d no longer holds its run lease",
                        beat.manager.storage.uid, beat.instance_name, beat.attempt)
            self.remove(beat)


_HEARTBEATS = _Heartbeats()
if hasattr(os, "register_at_fork"):
    # The thread does not survive fork(); the child starts its own on first use.
    os.register_at_fork(after_in_child=_HEARTBEATS._reset)


@contextmanager
def heartbeat(manager: TriggerManager, instance_name: str, attempt: int, ttl: float) -> Iterator[None]:
    """Renew ``attempt``'s run lease every ``ttl / 3`` seconds while the block runs."""
    beat = _Beat(manager, instance_name, attempt, ttl)
    _HEARTBEATS.add(beat)
    try:
        yield
    finally:
        _HEARTBEATS.remove(beat)
