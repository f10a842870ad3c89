"""Mutual exclusion, re-entrancy, bounded waits, lease expiry and fencing."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time
from collections.abc import Callable
from contextlib import ExitStack

import pytest

from triggers.capabilities import Capabilities
from triggers.errors import ClockSkewError, LeaseExpiredError, LockTimeoutError, StaleSessionError
from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee
from triggers_conformance.processes import new_event, start_child

Reload = Callable[[str], TriggerStorageBackend]

SKEW = 3600.0
"""Seconds by which the skewed process's clock is off: far more than any lease."""


class LockingTests(ConformanceBase):
    @guarantee("mutual_exclusion")
    def test_lock_is_reentrant_in_the_holding_thread(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        with storage.acquire_lock() as outer:
            with storage.acquire_lock() as inner:
                assert inner == outer
                storage.metadata["inner"] = True
                storage.save()
            assert storage.lock_held
            storage.metadata["outer"] = True
            storage.save()
        assert not storage.lock_held
        assert reload(storage.uid).metadata == {"inner": True, "outer": True}

    @guarantee("mutual_exclusion")
    def test_other_holders_wait_a_bounded_time(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        other = reload(storage.uid)
        with (
            storage.acquire_lock(),
            pytest.raises(LockTimeoutError, match=storage.uid),
            other.acquire_lock(timeout=0.2),
        ):
            pass  # pragma: no cover - must not be reached
        with other.acquire_lock(timeout=5):
            other.metadata["after"] = True
            other.save()
        assert reload(storage.uid).metadata == {"after": True}

    @guarantee("mutual_exclusion")
    def test_threads_are_excluded(self, make_storage: StorageFactory, uid: str) -> None:
        inside = 0
        overlaps: list[int] = []
        guard = threading.Lock()

        def worker() -> None:
            nonlocal inside
            backend = make_storage(uid)
            for _ in range(5):
                with backend.acquire_lock(timeout=30):
                    with guard:
                        inside += 1
                        overlaps.append(inside)
                    backend.metadata["n"] = backend.metadata.get("n", 0) + 1
                    backend.save()
                    with guard:
                        inside -= 1
            backend.close()

        threads = [threading.Thread(target=worker) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert max(overlaps) == 1
        checker = make_storage(uid)
        assert checker.metadata["n"] == 20
        checker.close()

    @guarantee("lease_expiry")
    def test_expired_lease_is_taken_over_and_stale_save_fails(
        self, storage: TriggerStorageBackend, reload: Reload, capabilities: Capabilities
    ) -> None:
        lease = self.short_lease(capabilities)
        with storage.acquire_lock():
            storage.metadata["v"] = "original"
            storage.save()
        newcomer = reload(storage.uid)
        with storage.acquire_lock(ttl=lease):
            storage.metadata["v"] = "stale"
            # The newcomer polls until the stale holder's lease ends.
            with newcomer.acquire_lock(timeout=lease * 4 + 5):
                newcomer.metadata["v"] = "new"
                newcomer.save()
            with pytest.raises(StaleSessionError, match=storage.uid):
                storage.save()
        assert reload(storage.uid).metadata == {"v": "new"}

    @guarantee("mutual_exclusion")
    def test_a_stale_holder_leaving_does_not_free_the_new_holders_lock(
        self, storage: TriggerStorageBackend, reload: Reload, capabilities: Capabilities
    ) -> None:
        lease = self.short_lease(capabilities)
        newcomer, third = reload(storage.uid), reload(storage.uid)
        with ExitStack() as stale_holder:
            stale_holder.enter_context(storage.acquire_lock(ttl=lease))
            with newcomer.acquire_lock(ttl=60, timeout=lease * 4 + 5):
                stale_holder.close()  # the stale holder leaves, releasing with its old token
                with pytest.raises(LockTimeoutError), third.acquire_lock(timeout=0.3):
                    pass  # pragma: no cover - must not be reached

    @guarantee("mutual_exclusion")
    def test_renewing_extends_the_lease(
        self, storage: TriggerStorageBackend, reload: Reload, capabilities: Capabilities
    ) -> None:
        lease = self.short_lease(capabilities)
        with storage.acquire_lock(ttl=lease) as first:
            renewed = storage.renew_lock()
            assert renewed.token == first.token
            assert renewed.expires_at >= first.expires_at
            storage.metadata["renewed"] = True
            storage.save()
        assert reload(storage.uid).metadata == {"renewed": True}

    @guarantee("mutual_exclusion", requires="skew_safe_leases")
    def test_a_contender_whose_clock_runs_ahead_cannot_take_a_live_lease(
        self, make_storage: StorageFactory, uid: str, reload: Reload
    ) -> None:
        """Broken NTP or a resumed VM: by its clock, every lease has long expired."""
        holder = make_storage(uid)
        ahead = make_storage(uid, clock=lambda: time.time() + SKEW)
        try:
            with holder.acquire_lock(ttl=30):
                with (
                    pytest.raises((LockTimeoutError, ClockSkewError)),
                    ahead.acquire_lock(timeout=0.5),
                ):
                    pass  # pragma: no cover - must not be reached
                holder.metadata["holder"] = "kept the lock"
                holder.save()
        finally:
            ahead.close()
            holder.close()
        assert reload(uid).metadata == {"holder": "kept the lock"}

    @guarantee("mutual_exclusion", requires="skew_safe_leases")
    def test_a_holder_whose_clock_runs_behind_keeps_its_lease(
        self, make_storage: StorageFactory, uid: str, reload: Reload
    ) -> None:
        """By the store's time, a lease stamped by a late clock expired an hour ago.

        Either the store judges the lease by its own clock, so others still
        wait, or the backend sees the skew and refuses the lock outright
        (leaving no lease behind); a second holder inside the lock is never
        allowed.
        """
        behind = make_storage(uid, clock=lambda: time.time() - SKEW)
        other = reload(uid)
        try:
            with behind.acquire_lock(ttl=30):
                with (
                    pytest.raises((LockTimeoutError, ClockSkewError)),
                    other.acquire_lock(timeout=0.5),
                ):
                    pass  # pragma: no cover - must not be reached
                behind.metadata["holder"] = "behind"
                behind.save()
            expected = {"holder": "behind"}
        except ClockSkewError:
            expected = {}
        finally:
            behind.close()
        with other.acquire_lock(timeout=5):  # nothing was left locked
            assert other.metadata == expected
        assert reload(uid).metadata == expected

    @guarantee("fenced_saves", requires="fenced_saves")
    def test_store_refuses_a_holder_that_believes_its_lease_is_valid(
        self, make_storage: StorageFactory, uid: str, reload: Reload, capabilities: Capabilities
    ) -> None:
        """A paused holder's clock stood still; only the store's fence stops it."""
        lease = self.short_lease(capabilities)
        frozen_at = time.time()
        paused = make_storage(uid, clock=lambda: frozen_at)
        assert paused.clock() == frozen_at, "make_storage must pass `clock` to the backend"
        with paused.acquire_lock(ttl=lease):
            paused.metadata["v"] = "stale"
            newcomer = reload(uid)
            with newcomer.acquire_lock(timeout=lease * 4 + 5):
                newcomer.metadata["v"] = "new"
                newcomer.save()
            with pytest.raises(LeaseExpiredError):
                paused.renew_lock()
            with pytest.raises(StaleSessionError) as refused:
                paused.save()
            assert not isinstance(refused.value, LeaseExpiredError), (
                "the save was refused by the holder's own clock, not by the store"
            )
        paused.close()
        assert reload(uid).metadata == {"v": "new"}

    @guarantee("fenced_saves", requires="fenced_saves")
    def test_store_refuses_a_save_based_on_another_version(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        with storage.acquire_lock():
            storage.metadata["v"] = 1
            storage.save()
        with storage.acquire_lock() as lease:
            storage.metadata["v"] = 2
            changes, _ = storage._collect_changes(lease)
            assert changes.base_version is not None
            for wrong in (None, changes.base_version + 1):
                stale = dataclasses.replace(
                    changes, base_version=wrong, new_version=(wrong or 0) + 1
                )
                with pytest.raises(StaleSessionError):
                    storage._save_changes(stale)
        assert reload(storage.uid).metadata == {"v": 1}

    @guarantee("mutual_exclusion", requires="cross_process_locking")
    def test_lock_excludes_other_processes(self, make_storage: StorageFactory, uid: str) -> None:
        ready, release = new_event(), new_event()

        def hold_until_released() -> str:
            backend = make_storage(uid)
            with backend.acquire_lock(ttl=60):
                ready.set()
                if not release.wait(60):
                    return "never released"
            return "released"

        child = start_child(hold_until_released)
        child.wait_for(ready, timeout=30)
        backend = make_storage(uid)
        try:
            with pytest.raises(LockTimeoutError), backend.acquire_lock(timeout=0.3):
                pass  # pragma: no cover - must not be reached
        finally:
            release.set()
        assert child.result(timeout=30) == "released"
        with backend.acquire_lock(timeout=10):
            pass
        backend.close()

    @guarantee("lease_expiry", requires="cross_process_locking")
    def test_killed_holder_releases_after_its_lease(
        self, make_storage: StorageFactory, uid: str, capabilities: Capabilities
    ) -> None:
        lease = self.short_lease(capabilities)
        ready = new_event()

        def hold_forever() -> None:
            backend = make_storage(uid)
            with backend.acquire_lock(ttl=lease):
                ready.set()
                signal.pause()

        child = start_child(hold_forever)
        child.wait_for(ready, timeout=30)
        os.kill(child.process.pid or 0, signal.SIGKILL)
        child.process.join(10)
        backend = make_storage(uid)
        with backend.acquire_lock(timeout=lease * 4 + 5):
            backend.metadata["survivor"] = True
            backend.save()
        backend.close()
