"""The manager's own mechanics: what it saves, when it dispatches, how it copes
with stores and runners that fail.

The documented semantics of fires, cascades, replays and skips, end to end on
every backend, are the conformance suite's (``triggers_conformance``); these
tests spy on saves and dispatches, which only the core can see.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import core_sample_tasks
import pytest
from core_toy_backends import (
    FailingMemoryBackend,
    FakeClock,
    LimitedMemoryBackend,
    RecordingMemoryBackend,
)

from triggers.errors import (
    ConfigurationError,
    InstanceNotFoundError,
    InvalidTransitionError,
    StorageError,
    ValueDomainError,
)
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.runners import TaskRunner, ThreadingTaskRunner
from triggers.storage import TRIGGER_KWARGS_KEY, TriggerStorageBackend
from triggers.types import InstanceStatus
from triggers.values import MAX_DEPTH

LONE = "\ud800"  # a lone surrogate: text that UTF-8 cannot encode


def task(run: str, *after: str, **directives: Any) -> dict[str, Any]:
    """A configuration running ``core_sample_tasks.<run>`` after ``after`` (default ``start``)."""
    return {"after": list(after) or ["start"], "run": f"core_sample_tasks.{run}", **directives}


def reload(storage: TriggerStorageBackend) -> MemoryStorageBackend:
    """A fresh object on the same memory session: what was stored, nothing else."""
    assert isinstance(storage, MemoryStorageBackend)
    return MemoryStorageBackend(storage.uid, namespace=storage.namespace)


def statuses(storage: TriggerStorageBackend) -> dict[str, str]:
    return {name: instance.status.value for name, instance in storage.instances.items()}


def runs(uid: str, instance_name: str) -> int:
    return core_sample_tasks.RUNS.count(f"{uid}/{instance_name}")


def manager_records(caplog: pytest.LogCaptureFixture, level: int) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "triggers.manager" and r.levelno == level]


class RecordingRunner(TaskRunner):
    """Runs nothing; remembers each name it was handed and its stored status then."""

    def __init__(self) -> None:
        super().__init__()
        self.handed: list[tuple[str, InstanceStatus]] = []

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.handed]

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        self.handed.append((instance_name, reload(manager.storage)[instance_name].status))


class BrokenRunner(TaskRunner):
    """Cannot start anything while ``broken``; runs at once (like eager) after."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True
        self.names: list[str] = []

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        self.names.append(instance_name)
        if self.broken:
            raise RuntimeError(f"no worker free for {instance_name}")
        manager.run_instance(instance_name)


@pytest.fixture
def recording(uid: str, namespace: str, clock: FakeClock) -> Iterator[RecordingMemoryBackend]:
    storage = RecordingMemoryBackend(uid, namespace=namespace, clock=clock)
    yield storage
    storage.close()


def scheduled_but_not_run(
    storage: TriggerStorageBackend, run: str = "count_runs"
) -> tuple[TriggerManager, RecordingRunner]:
    """A manager whose ``t_a#0`` was scheduled and handed to a runner that did not run it."""
    runner = RecordingRunner()
    manager = TriggerManager(storage, runner=runner)
    manager.update_configuration({"t_a": task(run)})
    assert manager.fire("start") == ["t_a#0"]
    return manager, runner


# --- update_instance_status ---------------------------------------------------


@pytest.mark.parametrize(
    "moves",
    [
        ["scheduled"],
        ["running"],
        ["running", "failed"],
        ["running", "failed", "skipped"],
        ["finished"],
    ],
)
def test_setting_the_current_status_again_saves_and_dispatches_nothing(
    recording: RecordingMemoryBackend, clock: FakeClock, moves: list[str]
) -> None:
    manager, runner = scheduled_but_not_run(recording)
    for status in moves:
        manager.update_instance_status("t_a#0", status)
    saves = len(recording.changes)
    handed = list(runner.handed)
    before = reload(recording)["t_a#0"].to_mapping()
    clock.advance(60)  # a save now would change lastModified

    again = manager.update_instance_status("t_a#0", moves[-1])

    assert again.status is InstanceStatus(moves[-1])
    assert len(recording.changes) == saves
    assert reload(recording)["t_a#0"].to_mapping() == before
    assert runner.handed == handed


@pytest.mark.parametrize(
    ("moves", "forbidden"),
    [
        ([], "replayed"),
        (["running"], "unstarted"),
        (["running"], "abandoned"),
        (["running", "failed"], "scheduled"),
        (["running", "failed"], "finished"),
        (["running", "finished"], "running"),
        (["running", "finished"], "scheduled"),
        (["running", "finished"], "failed"),
        (["abandoned"], "scheduled"),
    ],
)
def test_forbidden_status_change_raises_and_stores_nothing(
    recording: RecordingMemoryBackend, moves: list[str], forbidden: str
) -> None:
    manager, runner = scheduled_but_not_run(recording)
    for status in moves:
        manager.update_instance_status("t_a#0", status)
    current = reload(recording)["t_a#0"]
    saves = len(recording.changes)
    handed = list(runner.handed)

    with pytest.raises(InvalidTransitionError) as caught:
        manager.update_instance_status("t_a#0", forbidden)

    message = str(caught.value)
    assert repr(recording.uid) in message
    assert "'t_a#0'" in message
    assert f"from {current.status.value} to {forbidden}" in message
    assert len(recording.changes) == saves
    assert reload(recording)["t_a#0"].to_mapping() == current.to_mapping()
    assert manager.storage["t_a#0"].status is current.status  # nothing half-applied in memory
    assert runner.handed == handed


def test_scheduling_a_running_instance_hands_it_to_its_runner_again(
    recording: RecordingMemoryBackend,
) -> None:
    manager, runner = scheduled_but_not_run(recording)
    manager.update_instance_status("t_a#0", "running")
    assert runner.handed == [("t_a#0", InstanceStatus.SCHEDULED)]

    instance = manager.update_instance_status("t_a#0", "scheduled")

    assert instance.status is InstanceStatus.SCHEDULED
    # Handed over again, after the save that scheduled it.
    assert runner.handed == [("t_a#0", InstanceStatus.SCHEDULED)] * 2
    manager.run_instance("t_a#0")
    assert reload(recording)["t_a#0"].status is InstanceStatus.FINISHED
    assert runs(recording.uid, "t_a#0") == 1


def test_unknown_status_is_refused_before_anything_is_loaded(recording: RecordingMemoryBackend) -> None:
    manager, _ = scheduled_but_not_run(recording)
    saves = len(recording.changes)
    with pytest.raises(ValueError, match="'paused'"):
        manager.update_instance_status("t_a#0", "paused")
    assert len(recording.changes) == saves


# --- outcomes the store refuses -----------------------------------------------


def test_outcome_too_large_to_store_marks_the_instance_failed(
    uid: str, namespace: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    storage = LimitedMemoryBackend(uid, namespace=namespace, clock=clock)
    limit = storage.capabilities.max_record_bytes
    assert limit is not None
    manager = TriggerManager(storage)
    # t_big's result is kept in t_big#0's metadata (``result``) and becomes the
    # kwargs of t_next#0: both records are over the limit.
    manager.update_configuration({"t_big": task("big_result"), "t_next": task("count_runs", "t_big")})

    with caplog.at_level(logging.ERROR, logger="triggers.manager"):
        assert manager.fire("start", {"size": 2 * limit}) == ["t_big#0"]

    fresh = reload(storage)
    assert statuses(fresh) == {"t_big#0": "failed"}
    failed = fresh["t_big#0"]
    assert failed.metadata["error"]["type"] == "triggers.errors.SessionLimitError"
    assert "'t_big#0'" in failed.metadata["error"]["message"]
    assert "result" not in failed.metadata  # the refused outcome was not half-recorded
    assert "SessionLimitError" in failed.metadata["error"]["traceback"]
    assert failed.log_level == logging.ERROR
    assert not failed.logs_resolved
    assert "t_big" not in fresh.metadata[TRIGGER_KWARGS_KEY]  # the cascade was not applied
    assert runs(uid, "t_next#0") == 0
    assert manager.runner.errors == []
    (record,) = manager_records(caplog, logging.ERROR)
    assert repr(uid) in record.getMessage()
    assert "could not record the outcome of t_big#0" in record.getMessage()


def test_outcome_lost_to_a_failing_store_leaves_the_instance_running(
    uid: str, namespace: str, clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    storage = FailingMemoryBackend(uid, namespace=namespace, clock=clock)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": task("count_runs"), "t_b": task("count_runs", "t_a")})
    # The fire's save (which also marks t_a#0 running, the eager runner
    # being inline) goes through; every later one fails: the outcome's,
    # then the one recording the failure.
    storage.saves_allowed = len(storage.changes) + 1

    with caplog.at_level(logging.ERROR, logger="triggers.manager"):
        assert manager.fire("start") == ["t_a#0"]

    assert runs(uid, "t_a#0") == 1
    assert storage.failed_saves == 2
    assert statuses(reload(storage)) == {"t_a#0": "running"}
    assert manager.runner.errors == []
    first, second = manager_records(caplog, logging.ERROR)
    assert "could not record the outcome of t_a#0" in first.getMessage()
    assert repr(uid) in second.getMessage()
    assert "t_a#0 stays running" in second.getMessage()
    assert second.exc_info is not None
    assert isinstance(second.exc_info[1], StorageError)

    # Once the store is back, an operator settles it by hand.
    storage.saves_allowed = None
    manager.update_instance_status("t_a#0", "failed")
    assert statuses(reload(storage)) == {"t_a#0": "failed"}


# --- dispatching: runners that fail, resume() ----------------------------------


def test_runner_that_cannot_start_a_task_does_not_fail_the_saved_fire(
    uid: str, namespace: str, caplog: pytest.LogCaptureFixture
) -> None:
    storage = MemoryStorageBackend(uid, namespace=namespace)
    runner = BrokenRunner()
    manager = TriggerManager(storage, runner=runner)
    manager.update_configuration({"t_a": task("count_runs"), "t_b": task("count_runs", "t_a")})

    with caplog.at_level(logging.ERROR, logger="triggers.manager"):
        assert manager.fire("start", {"page": 1}) == ["t_a#0"]

    fresh = reload(storage)
    assert fresh.metadata[TRIGGER_KWARGS_KEY] == {"start": {"page": 1}}
    assert statuses(fresh) == {"t_a#0": "scheduled"}
    (error,) = runner.errors
    assert isinstance(error, RuntimeError)
    assert "t_a#0" in str(error)
    (record,) = manager_records(caplog, logging.ERROR)
    assert repr(uid) in record.getMessage()
    assert "could not run t_a#0" in record.getMessage()
    assert record.exc_info is not None
    assert record.exc_info[1] is error

    runner.broken = False
    assert manager.resume() == ["t_a#0"]
    assert statuses(reload(storage)) == {"t_a#0": "finished", "t_b#0": "finished"}
    assert runner.names == ["t_a#0", "t_a#0", "t_b#0"]

    assert manager.resume() == []
    assert runner.names == ["t_a#0", "t_a#0", "t_b#0"]
    assert runs(uid, "t_a#0") == 1
    assert runs(uid, "t_b#0") == 1


def test_resume_hands_over_only_scheduled_instances(recording: RecordingMemoryBackend) -> None:
    runner = RecordingRunner()
    manager = TriggerManager(recording, runner=runner)
    manager.update_configuration({
        "t_a": task("count_runs"),
        "t_b": task("count_runs"),
        "t_wait": task("count_runs", "start", "other"),
    })
    assert manager.fire("start") == ["t_a#0", "t_b#0"]
    manager.update_instance_status("t_b#0", "running")
    assert statuses(reload(recording)) == {"t_a#0": "scheduled", "t_b#0": "running", "t_wait#0": "unstarted"}
    saves = len(recording.changes)

    assert manager.resume() == ["t_a#0"]
    assert runner.names == ["t_a#0", "t_b#0", "t_a#0"]
    assert len(recording.changes) == saves  # resuming changes nothing stored


def test_instance_handed_over_several_times_runs_once(
    recording: RecordingMemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    manager, runner = scheduled_but_not_run(recording)
    assert manager.resume() == ["t_a#0"]
    assert manager.resume() == ["t_a#0"]  # nothing ran it yet: still scheduled
    assert runner.names == ["t_a#0"] * 3

    with caplog.at_level(logging.INFO, logger="triggers.manager"):
        for name in runner.names:
            manager.run_instance(name)

    assert runs(recording.uid, "t_a#0") == 1
    assert statuses(reload(recording)) == {"t_a#0": "finished"}
    skipped = [r.getMessage() for r in manager_records(caplog, logging.INFO)]
    assert len(skipped) == 2
    assert all("t_a#0 is finished, not running it" in message for message in skipped)
    assert manager.resume() == []


def test_eager_runner_is_marked_running_in_the_save_that_schedules_it(
    recording: RecordingMemoryBackend,
) -> None:
    manager = TriggerManager(recording)
    config = task("record_stored_statuses")
    manager.update_configuration({"t_a": config, "t_b": config})
    saves_before = len(recording.changes)

    assert manager.fire("start") == ["t_a#0", "t_b#0"]

    # The fire's save claims the first instance for the inline runner; the
    # second waits, scheduled, until its turn, so a crash while t_a#0 runs
    # would leave t_b#0 for resume().
    seen = core_sample_tasks.SEEN
    assert seen[f"{recording.uid}/t_a#0"] == {"t_a#0": "running", "t_b#0": "scheduled"}
    assert seen[f"{recording.uid}/t_b#0"] == {"t_a#0": "finished", "t_b#0": "running"}
    fire_save = recording.changes[saves_before]
    assert fire_save.instances["t_a#0"]["status"] == "running"
    assert fire_save.instances["t_b#0"]["status"] == "scheduled"
    # fire + claim t_a#0, t_a#0's outcome, t_b#0's claim, t_b#0's outcome.
    assert len(recording.changes) - saves_before == 4
    times = reload(recording)["t_a#0"].metadata["statusTimes"]
    assert set(times) == {"scheduled", "running", "finished"}


def test_a_claim_whose_save_failed_is_not_kept(uid: str, namespace: str, clock: FakeClock) -> None:
    storage = FailingMemoryBackend(uid, namespace=namespace, clock=clock)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": task("count_runs")})
    storage.saves_allowed = len(storage.changes)  # the fire's save fails

    with pytest.raises(StorageError, match="server closed the connection"):
        manager.fire("start")
    with pytest.raises(InstanceNotFoundError):
        manager.run_instance("t_a#0")  # never stored, so never claimed

    storage.saves_allowed = None
    assert manager.fire("start") == ["t_a#0"]
    assert runs(uid, "t_a#0") == 1
    assert statuses(reload(storage)) == {"t_a#0": "finished"}


def test_fire_into_a_closed_threading_runner(uid: str, namespace: str) -> None:
    runner = ThreadingTaskRunner(max_workers=1)
    runner.close()
    storage = MemoryStorageBackend(uid, namespace=namespace)
    manager = TriggerManager(storage, runner=runner)
    manager.update_configuration({"t_a": task("count_runs")})

    assert manager.fire("start") == ["t_a#0"]

    (error,) = runner.errors
    assert isinstance(error, RuntimeError)
    assert manager.join_all(timeout=0) is True
    assert statuses(reload(storage)) == {"t_a#0": "scheduled"}


def test_join_all_waits_for_the_runners_that_using_names(uid: str, namespace: str) -> None:
    threads = ThreadingTaskRunner(max_workers=2)
    gate = core_sample_tasks.GATES[uid] = threading.Event()
    storage = MemoryStorageBackend(uid, namespace=namespace)
    manager = TriggerManager(storage, runners={"threading": threads})
    try:
        manager.update_configuration({
            "t_slow": task("wait_for_gate", using="threading"),
            "t_next": task("count_runs", "t_slow"),
        })
        assert manager.fire("start") == ["t_slow#0"]
        # The default (eager) runner is idle; the threading one is not.
        assert manager.runner.join_all(timeout=0) is True
        assert manager.join_all(timeout=0) is False
        gate.set()
        assert manager.join_all(timeout=60) is True
        assert statuses(reload(storage)) == {"t_slow#0": "finished", "t_next#0": "finished"}
        assert threads.errors == []
    finally:
        gate.set()
        threads.close()
        del core_sample_tasks.GATES[uid]


# --- kwargs at their stored depth, names as stored text -----------------------


def nested_lists(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def test_fire_refuses_kwargs_that_would_nest_too_deep_once_stored(recording: RecordingMemoryBackend) -> None:
    manager = TriggerManager(recording)
    manager.update_configuration({"t_a": task("count_runs")})
    saves = len(recording.changes)
    # MAX_DEPTH levels counting the kwargs mapping itself, which is stored one
    # level inside the instance's kwargs.
    too_deep = {"k": nested_lists(MAX_DEPTH - 1)}

    with pytest.raises(ValueDomainError) as caught:
        manager.fire("start", too_deep)

    message = str(caught.value)
    assert repr(recording.uid) in message
    assert "trigger 'start'" in message
    assert f"nested deeper than {MAX_DEPTH}" in message
    assert len(recording.changes) == saves
    fresh = reload(recording)
    assert TRIGGER_KWARGS_KEY not in fresh.metadata
    assert dict(fresh.instances) == {}

    fits = {"k": nested_lists(MAX_DEPTH - 2)}
    assert manager.fire("start", fits) == ["t_a#0"]
    fresh = reload(recording)
    assert fresh["t_a#0"].kwargs == {"start": fits}
    assert fresh["t_a#0"].status is InstanceStatus.FINISHED


def test_fire_refuses_a_trigger_name_with_a_lone_surrogate(recording: RecordingMemoryBackend) -> None:
    manager = TriggerManager(recording)
    manager.update_configuration({"t_a": task("count_runs")})
    saves = len(recording.changes)
    with pytest.raises(ValueError) as caught:
        manager.fire(f"start{LONE}")
    message = str(caught.value)
    assert repr(recording.uid) in message
    assert "trigger name" in message
    assert "lone surrogate" in message
    assert len(recording.changes) == saves


def test_update_configuration_refuses_a_name_with_a_lone_surrogate(recording: RecordingMemoryBackend) -> None:
    manager = TriggerManager(recording)
    with pytest.raises(ConfigurationError, match="lone surrogate") as caught:
        manager.update_configuration({"t_a": task("count_runs"), "t_b": task("count_runs", f"t_a{LONE}")})
    assert "task 't_b'" in str(caught.value)
    assert "directive 'after'" in str(caught.value)
    assert recording.changes == []


# --- metadata written by a task -----------------------------------------------


def test_metadata_a_task_writes_is_kept_as_a_reload_would_see_it(recording: RecordingMemoryBackend) -> None:
    manager, _ = scheduled_but_not_run(recording, "annotate")
    manager.update_instance_metadata("t_a#0", {"note": "set before the run", "kept": True})

    manager.run_instance("t_a#0")

    expected = {
        "note": "written by the task",
        "kept": True,
        "pair": [1, 2],
        "when": datetime(2024, 1, 1, 10, tzinfo=UTC),
    }
    stored = reload(recording)["t_a#0"]
    assert stored.status is InstanceStatus.FINISHED
    assert {key: stored.metadata[key] for key in expected} == expected
    assert stored.metadata["when"].tzinfo is UTC
    # The manager's own object holds the same values as the store.
    live = manager.storage["t_a#0"].metadata
    assert {key: live[key] for key in expected} == expected


def test_unstorable_metadata_written_by_a_task_fails_the_instance(recording: RecordingMemoryBackend) -> None:
    manager = TriggerManager(recording)
    manager.update_configuration({
        "t_a": task("annotate_unstorable"),
        "t_b": task("count_runs", "t_a"),
    })

    assert manager.fire("start") == ["t_a#0"]

    fresh = reload(recording)
    assert statuses(fresh) == {"t_a#0": "failed"}
    failed = fresh["t_a#0"]
    error = failed.metadata["error"]
    assert error["type"] == "triggers.errors.UnsupportedValueError"
    assert "instance 't_a#0' metadata['tags']" in error["message"]
    assert "tags" not in failed.metadata
    assert failed.log_level == logging.ERROR
    assert "t_a" not in fresh.metadata[TRIGGER_KWARGS_KEY]  # its result did not cascade
    assert manager.runner.errors == []


def test_task_metadata_is_validated_at_the_depth_it_is_stored(
    recording: RecordingMemoryBackend, caplog: pytest.LogCaptureFixture
) -> None:
    """A value nested MAX_DEPTH levels is fine alone, but one level too deep
    inside the instance's metadata: the task's write is refused as such, not
    found out by the outcome's save failing."""
    manager = TriggerManager(recording)
    manager.update_configuration({"t_a": task("annotate_too_deep")})

    with caplog.at_level(logging.ERROR, logger="triggers.manager"):
        assert manager.fire("start") == ["t_a#0"]

    failed = reload(recording)["t_a#0"]
    assert failed.status is InstanceStatus.FAILED
    assert "metadata['deep']" in failed.metadata["error"]["message"]
    assert manager_records(caplog, logging.ERROR) == []


def test_a_task_that_marks_itself_failed_is_recorded_as_an_error(recording: RecordingMemoryBackend) -> None:
    manager = TriggerManager(recording)
    manager.update_configuration({"t_give_up": task("give_up")})
    manager.fire("start")
    instance = reload(recording)["t_give_up#0"]
    assert instance.status is InstanceStatus.FAILED
    assert instance.metadata["error"]["message"] == "the task set its own status to failed"
    assert instance.log_level == logging.ERROR and not instance.logs_resolved


@pytest.mark.parametrize("key", ["", ["a"], 7, "k" + LONE])
def test_bad_idempotency_keys_are_refused_before_anything_is_written(
    recording: RecordingMemoryBackend, key: Any
) -> None:
    manager = TriggerManager(recording)
    manager.update_configuration({"t_a": task("annotate")})
    saves = len(recording.changes)
    with pytest.raises(ValueError, match="idempotency_key"):
        manager.fire("start", idempotency_key=key)
    assert len(recording.changes) == saves
