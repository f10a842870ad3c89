"""No lost updates: concurrent fires into one session are each applied once."""

from __future__ import annotations

import threading
from collections.abc import Callable

from triggers.manager import TriggerManager
from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee
from triggers_conformance.processes import start_child

Reload = Callable[[str], TriggerStorageBackend]

WORKERS = 4
FIRES_PER_WORKER = 10


class ConcurrencyTests(ConformanceBase):
    def _configure(self, make_storage: StorageFactory, uid: str) -> None:
        backend = make_storage(uid)
        TriggerManager(backend).update_configuration({
            # Every "tick" makes a new instance; each one records who fired it.
            "t_tick": self.task("noop", after=["start"], andEvery="tick"),
        })
        TriggerManager(backend).fire("start")
        backend.close()

    def _assert_every_fire_applied_once(self, reload: Reload, uid: str) -> None:
        fresh = reload(uid)
        fired = sorted(
            (i.kwargs["tick"]["worker"], i.kwargs["tick"]["n"]) for i in fresh.instances.values()
        )
        expected = sorted((w, n) for w in range(WORKERS) for n in range(FIRES_PER_WORKER))
        assert fired == expected
        assert {i.status.value for i in fresh.instances.values()} == {"finished"}
        assert sorted(fresh.instances) == sorted(f"t_tick#{n}" for n in range(WORKERS * FIRES_PER_WORKER))

    @guarantee("no_lost_updates")
    def test_threads_firing_into_one_session(
        self, make_storage: StorageFactory, uid: str, reload: Reload
    ) -> None:
        self._configure(make_storage, uid)
        errors: list[BaseException] = []

        def worker(number: int) -> None:
            backend = make_storage(uid)
            try:
                manager = TriggerManager(backend)
                for n in range(FIRES_PER_WORKER):
                    manager.fire("tick", {"worker": number, "n": n})
            except BaseException as exc:  # surfaced below with the test's own assert
                errors.append(exc)
            finally:
                backend.close()

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(WORKERS)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert errors == []
        self._assert_every_fire_applied_once(reload, uid)

    @guarantee("no_lost_updates", requires="cross_process_locking")
    def test_processes_firing_into_one_session(
        self, make_storage: StorageFactory, uid: str, reload: Reload
    ) -> None:
        self._configure(make_storage, uid)

        def worker(number: int) -> int:
            backend = make_storage(uid)
            manager = TriggerManager(backend)
            for n in range(FIRES_PER_WORKER):
                manager.fire("tick", {"worker": number, "n": n})
            backend.close()
            return number

        children = [start_child(worker, w) for w in range(WORKERS)]
        assert sorted(child.result(timeout=120) for child in children) == list(range(WORKERS))
        self._assert_every_fire_applied_once(reload, uid)

    @guarantee("atomic_saves")
    def test_readers_never_see_half_a_save(
        self, make_storage: StorageFactory, uid: str, reload: Reload
    ) -> None:
        records, saves = 30, 15
        writer = make_storage(uid)
        with writer.acquire_lock():
            writer.update_configuration({"t_a": self.task("noop", after=["x"])})
            for _ in range(records):
                writer.create_instance("t_a", metadata={"marker": 0})
            writer.metadata["marker"] = 0
            writer.save()
        done = threading.Event()
        failures: list[BaseException] = []

        def write() -> None:
            try:
                for marker in range(1, saves + 1):
                    with writer.acquire_lock():
                        for instance in writer.instances.values():
                            instance.metadata["marker"] = marker
                        writer.metadata["marker"] = marker
                        writer.save()
            except BaseException as exc:
                failures.append(exc)
            finally:
                done.set()

        thread = threading.Thread(target=write)
        thread.start()
        seen: set[int] = set()
        while not done.is_set() or not seen:
            reader = reload(uid)
            markers = {i.metadata["marker"] for i in reader.instances.values()}
            markers.add(reader.metadata["marker"])
            assert len(markers) == 1, f"a reader saw a torn save: markers {sorted(markers)}"
            seen |= markers
        thread.join()
        assert failures == []
        assert reload(uid).metadata["marker"] == saves
