"""The manager's documented semantics, end to end through the backend.

Each test drives a session only through :class:`TriggerManager` and checks the
state a *fresh* backend object loads, so what is proven is what was stored.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import pytest

from triggers.errors import InvalidTransitionError
from triggers.manager import TriggerManager
from triggers.storage import TriggerStorageBackend
from triggers.types import InstanceStatus
from triggers_conformance.base import ConformanceBase
from triggers_conformance.guarantees import guarantee

Reload = Callable[[str], TriggerStorageBackend]


def statuses(storage: TriggerStorageBackend) -> dict[str, str]:
    return {name: instance.status.value for name, instance in storage.instances.items()}


class ManagerSemanticsTests(ConformanceBase):
    @guarantee("manager")
    def test_task_runs_once_all_after_triggers_fired_and_cascades(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({
            "t_import": self.task("Echo", after=["firstPage", "complete"]),
            "t_next": self.task("noop", after=["t_import"]),
        })
        assert manager.fire("firstPage", {"page": 1}) == []
        assert statuses(reload(manager.storage.uid)) == {"t_import#0": "unstarted"}
        assert manager.fire("complete", {"done": True}) == ["t_import#0"]
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_import#0": "finished", "t_next#0": "finished"}
        assert fresh["t_next#0"].kwargs["t_import"] == {
            "received": {"firstPage": {"page": 1}, "complete": {"done": True}},
            "instance": "t_import#0",
        }
        times = fresh["t_import#0"].metadata["statusTimes"]
        assert set(times) == {"scheduled", "running", "finished"}
        assert fresh["t_import#0"].last_modified == times["finished"]

    @guarantee("manager")
    def test_trigger_fired_again_does_not_rerun_a_task(self, manager: TriggerManager, reload: Reload) -> None:
        manager.update_configuration({"t_a": self.task("noop", after=["x"])})
        manager.fire("x", {"n": 1})
        manager.fire("x", {"n": 2})
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_a#0": "finished"}
        assert fresh.metadata["triggerKwargs"]["x"] == {"n": 2}

    @guarantee("manager")
    def test_with_params_merge_under_fired_kwargs(self, manager: TriggerManager, reload: Reload) -> None:
        manager.update_configuration({
            "t_score": self.task(
                "Echo", after=["final"], withParams={"final": {"scoring": "weighted", "pass": 60}}
            ),
            "t_sink": self.task("noop", after=["t_score"]),
        })
        manager.fire("final", {"pass": 75})
        received = reload(manager.storage.uid)["t_sink#0"].kwargs["t_score"]["received"]
        assert received == {"final": {"scoring": "weighted", "pass": 75}}

    @guarantee("manager")
    def test_and_every_creates_an_instance_per_fire(self, manager: TriggerManager, reload: Reload) -> None:
        manager.update_configuration({
            "t_page": self.task("Echo", after=["subject"], andEvery="page"),
        })
        manager.fire("page", {"n": 1})
        manager.fire("page", {"n": 2})
        assert statuses(reload(manager.storage.uid)) == {"t_page#0": "unstarted", "t_page#1": "unstarted"}
        manager.fire("subject", {"id": 7})
        manager.fire("page", {"n": 3})
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_page#0": "finished", "t_page#1": "finished", "t_page#2": "finished"}
        assert [fresh[f"t_page#{n}"].kwargs["page"]["n"] for n in range(3)] == [1, 2, 3]
        assert all(fresh[f"t_page#{n}"].kwargs["subject"] == {"id": 7} for n in range(3))

    @guarantee("manager")
    def test_unless_abandons_unstarted_instances(self, manager: TriggerManager, reload: Reload) -> None:
        manager.update_configuration({
            "t_browser": self.task("noop", after=["first", "second"], unless=["embedded"]),
            "t_ran": self.task("noop", after=["first"], unless=["embedded"]),
        })
        manager.fire("first")
        manager.fire("embedded")
        manager.fire("second")
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_browser#0": "abandoned", "t_ran#0": "finished"}
        assert fresh["t_browser#0"].abandon_state == {"status": "unstarted"}
        assert fresh.get_unresolved_instances() == []

    @guarantee("manager")
    def test_unless_before_any_trigger_abandons_the_first_instance(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        # As in Triggers 2.0: the unless trigger makes the task's first
        # instance, abandoned at once; later triggers make no other.
        manager.update_configuration({
            "t_a": self.task("noop", after=["x"], unless=["stop"]),
            "t_b": self.task("noop", after=["y"]),
        })
        manager.fire("stop")
        manager.fire("x")
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_a#0": "abandoned"}
        assert [task.name for task in fresh.get_unresolved_tasks()] == ["t_b"]

    @guarantee("manager")
    def test_metadata_a_task_writes_is_kept(self, manager: TriggerManager, reload: Reload) -> None:
        manager.update_configuration({"t_note": self.task("annotate", after=["x"])})
        manager.fire("x")
        instance = reload(manager.storage.uid)["t_note#0"]
        assert instance.status is InstanceStatus.FINISHED
        assert instance.metadata["annotation"] == {"by": "t_note#0", "n": 1}

    @guarantee("manager")
    def test_failure_then_replay_with_replacement_kwargs(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({
            "t_fail": self.task("fail", after=["x"]),
            "t_after": self.task("noop", after=["t_fail"]),
        })
        manager.fire("x", {"ok": False})
        failed = reload(manager.storage.uid)["t_fail#0"]
        assert failed.status is InstanceStatus.FAILED
        assert failed.metadata["error"]["type"] == "builtins.ValueError"
        assert "failed on purpose" in failed.metadata["error"]["message"]
        assert "Traceback" in failed.metadata["error"]["traceback"]
        assert failed.log_level == logging.ERROR and not failed.logs_resolved

        clone = manager.replay_failed_instance("t_fail#0", replacement_kwargs={"x": {"ok": True}})
        assert clone.name == "t_fail#1"
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_fail#0": "replayed", "t_fail#1": "finished", "t_after#0": "finished"}
        assert fresh["t_fail#1"].parent == "t_fail#0" and fresh["t_fail#1"].depth == 1
        with pytest.raises(InvalidTransitionError, match="t_fail#1"):
            manager.replay_failed_instance("t_fail#1")

    @guarantee("manager")
    def test_replay_refuses_kwargs_that_could_never_run(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({"t_fail": self.task("fail", after=["x", "y"])})
        manager.fire("x")
        manager.fire("y")
        with pytest.raises(ValueError, match="'x'"):
            manager.replay_failed_instance("t_fail#0", replacement_kwargs={"y": {"ok": True}})
        assert statuses(reload(manager.storage.uid)) == {"t_fail#0": "failed"}

    @guarantee("manager")
    def test_skip_failed_instance_with_and_without_cascade(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({
            "t_a": self.task("fail", after=["x"]),
            "t_b": self.task("fail", after=["y"]),
            "t_after_b": self.task("Echo", after=["t_b"]),
        })
        manager.fire("x")
        manager.fire("y")
        manager.skip_failed_instance("t_a#0")
        manager.skip_failed_instance("t_b#0", cascade=True, result={"skipped": True})
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_a#0": "skipped", "t_b#0": "skipped", "t_after_b#0": "finished"}
        assert fresh["t_after_b#0"].kwargs == {"t_b": {"skipped": True}}
        with pytest.raises(InvalidTransitionError):
            manager.skip_failed_instance("t_after_b#0")

    @guarantee("manager")
    def test_logs_are_recorded_and_resolved(self, manager: TriggerManager, reload: Reload) -> None:
        manager.update_configuration({"t_warn": self.task("warn", after=["x"])})
        manager.fire("x")
        fresh = reload(manager.storage.uid)
        assert fresh["t_warn#0"].log_level_name == "WARNING"
        # A warning is recorded but needs no resolution (threshold: ERROR).
        assert fresh.get_instances_with_unresolved_logs() == []
        manager.update_configuration({"t_err": self.task("log_error", after=["y"])})
        manager.fire("y")
        fresh = reload(manager.storage.uid)
        assert fresh["t_err#0"].log_level_name == "ERROR"
        assert [i.name for i in fresh.get_instances_with_unresolved_logs()] == ["t_err#0"]
        manager.mark_instance_logs_resolved("t_err#0")
        assert reload(manager.storage.uid).get_instances_with_unresolved_logs() == []

    @guarantee("manager")
    def test_retry_requested_by_a_task(self, manager: TriggerManager, reload: Reload) -> None:
        manager.update_configuration({"t_retry": self.task("retry_once", after=["x"])})
        manager.fire("x")
        instance = reload(manager.storage.uid)["t_retry#0"]
        assert instance.status is InstanceStatus.FINISHED
        assert instance.metadata["retries"] == 1

    @guarantee("manager")
    def test_idempotency_key_makes_a_retried_fire_a_no_op(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({"t_page": self.task("noop", after=["start"], andEvery="page")})
        manager.fire("start")
        assert manager.fire("page", {"n": 1}, idempotency_key="page-1") == ["t_page#0"]
        assert manager.fire("page", {"n": 1}, idempotency_key="page-1") == []
        manager.fire("page", {"n": 2}, idempotency_key="page-2")
        assert [i.name for i in reload(manager.storage.uid)] == ["t_page#0", "t_page#1"]

    @guarantee("manager")
    def test_new_task_catches_up_on_triggers_already_fired(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({"t_a": self.task("noop", after=["x"])})
        manager.fire("x", {"v": 1})
        manager.update_configuration({"t_late": self.task("Echo", after=["x"])})
        fresh = reload(manager.storage.uid)
        assert statuses(fresh) == {"t_a#0": "finished", "t_late#0": "finished"}
        assert fresh["t_late#0"].kwargs == {"x": {"v": 1}}

    @guarantee("manager")
    def test_external_completion_cascades_only_when_asked(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({
            "t_external": self.task("hand_off", after=["x"]),
            "t_next": self.task("noop", after=["t_external"]),
        })
        manager.fire("x")
        manager.update_instance_status("t_external#0", "finished")  # Triggers 2.0's default
        assert statuses(reload(manager.storage.uid)) == {"t_external#0": "finished"}

    @guarantee("manager")
    def test_external_completion_cascades_exactly_once(
        self, manager: TriggerManager, reload: Reload
    ) -> None:
        manager.update_configuration({
            "t_external": self.task("hand_off", after=["x"]),
            "t_each": self.task("noop", after=["start"], andEvery="t_external"),
        })
        manager.fire("start")
        manager.fire("x")
        assert statuses(reload(manager.storage.uid))["t_external#0"] == "running"
        manager.update_instance_metadata("t_external#0", {"note": "by the worker"})
        for _ in range(2):  # delivered twice
            manager.update_instance_status(
                "t_external#0", "finished", {"rows": 3}, cascade=True, cascade_kwargs={"id": 7}
            )
        fresh = reload(manager.storage.uid)
        assert fresh["t_external#0"].metadata["note"] == "by the worker"
        assert fresh["t_external#0"].metadata["rows"] == 3
        assert statuses(fresh) == {"t_external#0": "finished", "t_each#0": "finished"}
        assert fresh["t_each#0"].kwargs["t_external"] == {"id": 7}
        with pytest.raises(InvalidTransitionError, match="finished to scheduled"):
            manager.update_instance_status("t_external#0", "scheduled")
        assert statuses(reload(manager.storage.uid))["t_external#0"] == "finished"
