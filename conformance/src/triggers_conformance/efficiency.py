"""Incremental saves and partial loads, observed at the backend's hooks.

These check what the base class hands the backend and what the backend
returns; each backend's own tests check, with its driver's event hooks, that
the store then does only that I/O.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from triggers.manager import TriggerManager
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend
from triggers.types import InstanceStatus
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee

Reload = Callable[[str], TriggerStorageBackend]

HISTORY = 60


class EfficiencyTests(ConformanceBase):
    def _session_with_history(self, make_storage: StorageFactory, uid: str) -> None:
        backend = make_storage(uid)
        manager = TriggerManager(backend)
        manager.update_configuration({
            "t_page": self.task("noop", after=["start"], andEvery="page"),
            "t_wait": self.task("noop", after=["start", "never"]),
        })
        manager.fire("start")
        with backend.acquire_lock():
            for n in range(HISTORY):
                backend.create_instance(
                    "t_page", status=InstanceStatus.FINISHED, kwargs={"page": {"n": n}, "start": {}}
                )
            backend.save()
        backend.close()

    @guarantee("incremental_saves", requires="incremental_saves")
    def test_fire_writes_only_what_changed(self, make_storage: StorageFactory, uid: str) -> None:
        self._session_with_history(make_storage, uid)
        backend = make_storage(uid)
        written: list[SessionChanges] = []
        save_changes = backend._save_changes

        def spy(changes: SessionChanges) -> None:
            written.append(changes)
            save_changes(changes)

        backend._save_changes = spy  # type: ignore[method-assign]
        TriggerManager(backend).fire("page", {"n": "new"})
        # One save to schedule the instance and mark it running (the eager
        # runner is inline), one to record that it finished.
        assert len(written) == 2
        touched = set().union(*(set(c.instances) for c in written))
        assert touched == {"t_page#0"}  # the instance that was waiting for "page"
        assert all(not c.configs for c in written)
        # recentWrites: the tokens by which an optimistic save recognises its own write.
        assert set().union(*(set(c.metadata) for c in written)) <= {
            "triggerKwargs", "instanceCounts", "recentWrites"
        }
        versions = [(c.base_version, c.new_version) for c in written]
        assert all(new == (base or 0) + 1 for base, new in versions)
        backend.close()

    @guarantee("partial_loads", requires="partial_loads")
    def test_fire_loads_only_active_instances(self, make_storage: StorageFactory, uid: str) -> None:
        self._session_with_history(make_storage, uid)
        backend = make_storage(uid)
        loads: list[tuple[LoadScope, int]] = []
        load_session = backend._load_session

        def spy(scope: LoadScope) -> StoredSession:
            stored = load_session(scope)
            loads.append((scope, len(stored.instances)))
            return stored

        backend._load_session = spy  # type: ignore[method-assign]
        manager = TriggerManager(backend)
        manager.fire("page", {"n": "new"})
        # A task's first instance is numbered without looking at the history.
        manager.update_configuration({"t_new": self.task("noop", after=["fresh"])})
        manager.fire("fresh")
        assert backend["t_new#0"].status.value == "finished"
        assert loads, "the fire loaded nothing"
        assert all(scope == LoadScope.ACTIVE for scope, _ in loads), loads
        # Only the waiting t_wait instance (and the new page) are ever active.
        assert max(count for _, count in loads) <= 2, loads
        backend.close()

    @guarantee("partial_loads", requires="partial_loads")
    def test_full_history_is_still_there_on_demand(
        self, make_storage: StorageFactory, uid: str, reload: Reload
    ) -> None:
        self._session_with_history(make_storage, uid)
        backend = make_storage(uid)
        TriggerManager(backend).fire("page", {"n": "new"})
        assert backend.instance_count("t_page") == HISTORY + 1
        names: Any = sorted(reload(uid).instances)
        assert len(names) == HISTORY + 2
        backend.close()
