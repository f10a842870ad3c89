"""The session-state API: what is saved is what a fresh object loads."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from triggers.errors import InstanceNotFoundError, LockNotHeldError
from triggers.storage import TriggerStorageBackend
from triggers.types import InstanceStatus, TaskInstance
from triggers_conformance.base import ConformanceBase
from triggers_conformance.guarantees import guarantee

Reload = Callable[[str], TriggerStorageBackend]


class SessionApiTests(ConformanceBase):
    @guarantee("session_api")
    def test_new_session_is_empty(self, storage: TriggerStorageBackend) -> None:
        assert dict(storage.tasks) == {}
        assert dict(storage.instances) == {}
        assert storage.metadata == {}
        assert list(storage) == []
        assert len(storage) == 0
        assert storage.get_unresolved_instances() == []

    @guarantee("session_api")
    def test_configuration_round_trips(self, storage: TriggerStorageBackend, reload: Reload) -> None:
        configuration = {
            "t_a": self.task("noop", after=["x", "y"], unless=["z"], withParams={"x": {"p": 1}}),
            "t_b": self.task("noop", after=["t_a"], andEvery="tick", using="eager", custom={"k": [1]}),
        }
        with storage.acquire_lock():
            storage.update_configuration(configuration)
            storage.save()
        loaded = reload(storage.uid).tasks
        assert sorted(loaded) == ["t_a", "t_b"]
        assert loaded["t_a"].after == ("x", "y")
        assert loaded["t_a"].unless == ("z",)
        assert loaded["t_a"].with_params == {"x": {"p": 1}}
        assert loaded["t_b"].and_every == "tick"
        assert loaded["t_b"].using == "eager"
        assert loaded["t_b"].extra == {"custom": {"k": [1]}}
        assert {n: c.to_mapping() for n, c in loaded.items()} == {
            n: c.to_mapping() for n, c in storage.tasks.items()
        }

    @guarantee("session_api")
    def test_instances_are_created_cloned_and_looked_up(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        with storage.acquire_lock():
            storage.update_configuration({"t_a": self.task("noop", after=["x"])})
            first = storage.create_instance("t_a", kwargs={"x": {"n": 1}})
            second = storage.create_instance(storage.tasks["t_a"])
            clone = storage.clone_instance(first.name)
            storage.save()
        assert [first.name, second.name, clone.name] == ["t_a#0", "t_a#1", "t_a#2"]
        fresh = reload(storage.uid)
        assert fresh["t_a#2"].kwargs == {"x": {"n": 1}}
        assert fresh["t_a#2"].parent == "t_a#0"
        assert fresh["t_a#2"].depth == 1
        assert "t_a#1" in fresh
        assert "t_a#9" not in fresh
        with pytest.raises(InstanceNotFoundError, match="t_a#9"):
            fresh["t_a#9"]
        with pytest.raises(KeyError):
            fresh["t_a#9"]
        assert sorted(fresh.instances) == ["t_a#0", "t_a#1", "t_a#2"]
        assert [i.name for i in fresh.instances_of_task("t_a")] == ["t_a#0", "t_a#1", "t_a#2"]
        assert fresh.instance_count("t_a") == 3
        with fresh.acquire_lock():
            assert fresh.create_instance("t_a").name == "t_a#3"

    @guarantee("session_api")
    def test_unresolved_queries(self, storage: TriggerStorageBackend, reload: Reload) -> None:
        with storage.acquire_lock():
            storage.update_configuration({
                "t_done": self.task("noop", after=["x"]),
                "t_open": self.task("noop", after=["x"]),
                "t_never": self.task("noop", after=["y"]),
            })
            done = storage.create_instance("t_done", status=InstanceStatus.FINISHED)
            done.metadata["logLevel"] = logging.ERROR
            warned = storage.create_instance("t_done", status=InstanceStatus.FINISHED)
            warned.metadata["logLevel"] = logging.WARNING
            storage.create_instance("t_open", status=InstanceStatus.FAILED)
            skipped = storage.create_instance("t_open", status=InstanceStatus.SKIPPED)
            skipped.metadata["logLevel"] = logging.CRITICAL
            storage.save()
        fresh = reload(storage.uid)
        assert [i.name for i in fresh.get_unresolved_instances()] == ["t_open#0"]
        assert [t.name for t in fresh.get_unresolved_tasks()] == ["t_never", "t_open"]
        # Triggers 2.0's threshold: ERROR and above, on instances nobody dealt with
        # (a warning alone, or an error on a skipped instance, is not unresolved).
        assert [i.name for i in fresh.get_instances_with_unresolved_logs()] == ["t_done#0"]

    @guarantee("session_api")
    def test_iterating_a_session_yields_its_instances(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        with storage.acquire_lock():
            storage.update_configuration({
                "t_a": self.task("noop", after=["x"]),
                "t_b": self.task("noop", after=["x"]),
            })
            for task in ("t_b", "t_a", "t_a"):
                storage.create_instance(task)
            storage.save()
        fresh = reload(storage.uid)
        instances = list(iter(fresh))
        assert all(isinstance(i, TaskInstance) for i in instances)
        assert [i.name for i in instances] == ["t_a#0", "t_a#1", "t_b#0"]
        assert "t_b#0" in fresh and "t_b" not in fresh

    @guarantee("session_api")
    def test_metadata_changes_and_deletions_persist(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        with storage.acquire_lock():
            storage.metadata.update({"keep": 1, "drop": 2, "nested": {"a": [1, 2]}})
            storage.save()
        with storage.acquire_lock():
            del storage.metadata["drop"]
            storage.metadata["nested"]["a"].append(3)
            storage.save()
        assert reload(storage.uid).metadata == {"keep": 1, "nested": {"a": [1, 2, 3]}}

    @guarantee("session_api")
    def test_save_outside_the_lock_is_refused(self, storage: TriggerStorageBackend, reload: Reload) -> None:
        storage.metadata["x"] = 1
        with pytest.raises(LockNotHeldError, match=storage.uid):
            storage.save()
        assert reload(storage.uid).metadata == {}

    @guarantee("session_api")
    def test_invalidate_cache_sees_other_writers(
        self, storage: TriggerStorageBackend, reload: Reload
    ) -> None:
        assert storage.metadata == {}
        other = reload(storage.uid)
        with other.acquire_lock():
            other.metadata["by"] = "other"
            other.save()
        storage.invalidate_cache()
        assert storage.metadata == {"by": "other"}

    @guarantee("session_api")
    def test_debug_repr_is_plain_json(self, storage: TriggerStorageBackend) -> None:
        with storage.acquire_lock():
            storage.update_configuration({"t_a": self.task("noop", after=["x"])})
            storage.create_instance("t_a", kwargs={"x": {"k": "v"}})
            storage.save()
        document = json.loads(json.dumps(storage.debug_repr()))
        assert document["uid"] == storage.uid
        assert document["instances"]["t_a#0"]["kwargs"] == {"x": {"k": "v"}}
        assert document["tasks"]["t_a"]["after"] == ["x"]
