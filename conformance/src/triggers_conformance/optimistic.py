"""Optimistic saves: ``transact()`` without a lease, and how it meets other writers.

A backend that declares ``optimistic_saves`` lets :meth:`transact` change a
session with one load and one conditional write. These tests interleave
writers deterministically (the second writer runs from inside the first one's
change, between its load and its write), so every outcome is forced rather
than hoped for under load.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest

from triggers.capabilities import Capabilities
from triggers.errors import (
    ContentionError,
    LockTimeoutError,
    StaleSessionError,
    StorageError,
)
from triggers.storage import SessionChanges, TriggerStorageBackend
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee

Reload = Callable[[str], TriggerStorageBackend]


class ReplyLost(ConnectionError):
    """What a driver raises when the connection drops after the store committed."""


def _count(storage: TriggerStorageBackend, key: str) -> None:
    storage.metadata[key] = int(storage.metadata.get(key, 0)) + 1


class OptimisticTests(ConformanceBase):
    @guarantee("no_lost_updates")
    def test_transact_inside_the_lock_saves_under_that_lock(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        with storage.acquire_lock():
            storage.metadata["held"] = True
            assert storage.transact(lambda: _count(storage, "n")) is None
            assert storage.lock_held
        assert reload(storage.uid).metadata == {"held": True, "n": 1}

    @guarantee("no_lost_updates")
    def test_an_error_in_the_change_writes_nothing(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        storage.transact(lambda: _count(storage, "n"))

        def half_done() -> None:
            _count(storage, "n")
            raise RuntimeError("the change gave up")

        with pytest.raises(RuntimeError, match="gave up"):
            storage.transact(half_done)
        assert storage.metadata == {"n": 1}  # what the failed change did was dropped
        assert reload(storage.uid).metadata["n"] == 1

    @guarantee("optimistic_saves", requires="optimistic_saves")
    def test_a_writer_that_was_overtaken_applies_its_change_again(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        other = reload(storage.uid)
        runs: list[int] = []

        def change() -> str:
            runs.append(int(storage.metadata.get("other", 0)))
            storage.metadata["mine"] = True
            if len(runs) == 1:  # between this load and this write, another writer saves
                other.transact(lambda: _count(other, "other"))
            return "done"

        assert storage.transact(change) == "done"
        assert runs == [0, 1]  # the second run saw the other writer's change
        assert reload(storage.uid).metadata == {"mine": True, "other": 1}

    @guarantee("optimistic_saves", requires="optimistic_saves")
    def test_an_optimistic_writer_never_overwrites_a_lease_holder(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        writer = reload(storage.uid)
        with storage.acquire_lock():
            storage.metadata["holder"] = True
            with pytest.raises(ContentionError, match=storage.uid) as refused:
                writer.transact(lambda: _count(writer, "writer"), timeout=0.3)
            assert isinstance(refused.value, LockTimeoutError)
            assert "attempt" in str(refused.value)
            storage.save()
        assert reload(storage.uid).metadata == {"holder": True}
        writer.transact(lambda: _count(writer, "writer"))  # the lease is gone: it goes through
        assert reload(storage.uid).metadata == {"holder": True, "writer": 1}

    @guarantee("optimistic_saves", requires="optimistic_saves")
    def test_a_writer_waits_out_a_short_critical_section(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        holder = reload(storage.uid)
        entered: list[bool] = []

        def change() -> None:
            _count(storage, "writer")
            if not entered:  # a lock holder arrives after this load and leaves later
                entered.append(True)
                with holder.acquire_lock():
                    _count(holder, "holder")
                    holder.save()

        storage.transact(change, timeout=10)
        assert reload(storage.uid).metadata == {"holder": 1, "writer": 1}

    @guarantee("optimistic_saves", requires="optimistic_saves")
    def test_a_stale_lease_holder_never_overwrites_an_optimistic_write(
        self, make_storage: StorageFactory, uid: str, reload: Reload, capabilities: Capabilities
    ) -> None:
        if not capabilities.fenced_saves:
            pytest.skip("needs fenced_saves too: only the store can refuse the paused holder")
        lease = self.short_lease(capabilities)
        frozen_at = time.time()
        paused = make_storage(uid, clock=lambda: frozen_at)
        writer = reload(uid)
        with paused.acquire_lock(ttl=lease):
            paused.metadata["v"] = "stale"
            # Once the lease has run out on the store, the optimistic writer goes through.
            writer.transact(lambda: writer.metadata.update(v="new"), timeout=lease * 4 + 5)
            with pytest.raises(StaleSessionError):
                paused.save()
        paused.close()
        assert reload(uid).metadata == {"v": "new"}

    @guarantee("optimistic_saves", requires="optimistic_saves")
    def test_retries_are_bounded_and_write_nothing(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        other = reload(storage.uid)
        runs: list[int] = []

        def always_overtaken() -> None:
            runs.append(1)
            storage.metadata["mine"] = True
            other.transact(lambda: _count(other, "other"))

        started = time.monotonic()
        with pytest.raises(ContentionError, match=storage.uid) as refused:
            storage.transact(always_overtaken, timeout=0.5)
        assert time.monotonic() - started < 30  # bounded, not endless (a loose bound)
        assert len(runs) >= 2
        assert f"{len(runs)} attempt(s)" in str(refused.value)
        assert reload(storage.uid).metadata == {"other": len(runs)}

    @guarantee("optimistic_saves", requires="optimistic_saves")
    def test_a_write_whose_reply_was_lost_is_not_applied_twice(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        storage.transact(lambda: _count(storage, "n"))
        save_changes = storage._save_changes
        calls: list[SessionChanges] = []

        def commit_then_lose_the_reply(changes: SessionChanges) -> None:
            calls.append(changes)
            save_changes(changes)
            if len(calls) == 1:
                raise ReplyLost("connection reset by peer")

        storage._save_changes = commit_then_lose_the_reply  # type: ignore[method-assign]
        storage.transact(lambda: _count(storage, "n"))
        assert len(calls) == 1  # recognised as landed: not sent again
        assert reload(storage.uid).metadata["n"] == 2

    @guarantee("optimistic_saves", requires="optimistic_saves")
    def test_a_write_that_failed_before_the_store_is_reported_and_not_applied(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        storage.transact(lambda: _count(storage, "n"))
        save_changes = storage._save_changes

        def fail_before_sending(changes: SessionChanges) -> None:
            raise ReplyLost("connection refused")

        storage._save_changes = fail_before_sending  # type: ignore[method-assign]
        with pytest.raises(StorageError, match="connection refused") as failed:
            storage.transact(lambda: _count(storage, "n"))
        assert isinstance(failed.value.__cause__, ReplyLost)
        storage._save_changes = save_changes  # type: ignore[method-assign]
        assert reload(storage.uid).metadata["n"] == 1
        storage.transact(lambda: _count(storage, "n"))
        assert reload(storage.uid).metadata["n"] == 2
