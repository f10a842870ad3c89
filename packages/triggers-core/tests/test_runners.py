from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from triggers.errors import StorageError
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.runners import EagerTaskRunner, TaskRunner, ThreadingTaskRunner
from triggers.types import InstanceStatus

RUN = "core_sample_tasks.name_of_instance"


@pytest.fixture
def threading_runner() -> Iterator[ThreadingTaskRunner]:
    runner = ThreadingTaskRunner(max_workers=2)
    yield runner
    runner.close()


def test_threading_runner_join_all_waits_for_cascades(
    uid: str, namespace: str, threading_runner: ThreadingTaskRunner
) -> None:
    storage = MemoryStorageBackend(uid, namespace=namespace)
    manager = TriggerManager(storage, runner=threading_runner)
    manager.update_configuration(
        {
            "t_a": {"after": ["start"], "run": RUN},
            "t_b": {"after": ["t_a"], "run": RUN},
            "t_c": {"after": ["t_b"], "run": RUN},
        }
    )
    assert manager.fire("start") == ["t_a#0"]
    assert threading_runner.join_all(timeout=60)
    assert threading_runner.errors == []

    stored = MemoryStorageBackend(uid, namespace=namespace)
    assert {name: i.status for name, i in stored.instances.items()} == {
        "t_a#0": InstanceStatus.FINISHED,
        "t_b#0": InstanceStatus.FINISHED,
        "t_c#0": InstanceStatus.FINISHED,
    }
    # Each cascade delivered the previous task's result.
    assert stored["t_b#0"].kwargs["t_a"] == {"ran": "t_a#0"}
    assert stored["t_c#0"].kwargs["t_b"] == {"ran": "t_b#0"}


def test_join_all_with_nothing_started_returns_at_once() -> None:
    runner = ThreadingTaskRunner()
    try:
        assert runner.join_all(timeout=0)
    finally:
        runner.close()


class _StubManager:
    """Stands in for a manager whose run_instance fails or blocks."""

    def __init__(self, error: BaseException | None = None) -> None:
        self.error = error
        self.release = threading.Event()
        self.ran: list[str] = []

    def run_instance(self, instance_name: str) -> None:
        self.ran.append(instance_name)
        if self.error is not None:
            raise self.error
        assert self.release.wait(timeout=60)


def test_errors_escaping_run_instance_are_collected(threading_runner: ThreadingTaskRunner) -> None:
    error = StorageError("store went away")
    stub = _StubManager(error)
    threading_runner.run(stub, "t_a#0")  # type: ignore[arg-type]
    assert threading_runner.join_all(timeout=60)
    assert stub.ran == ["t_a#0"]
    assert threading_runner.errors == [error]


def test_join_all_reports_unfinished_work(threading_runner: ThreadingTaskRunner) -> None:
    stub = _StubManager()
    threading_runner.run(stub, "t_a#0")  # type: ignore[arg-type]
    assert not threading_runner.join_all(timeout=0)
    stub.release.set()
    assert threading_runner.join_all(timeout=60)
    assert threading_runner.errors == []


def test_closed_threading_runner_refuses_work_and_still_joins() -> None:
    runner = ThreadingTaskRunner(max_workers=1)
    stub = _StubManager()
    stub.release.set()
    runner.run(stub, "t_a#0")  # type: ignore[arg-type]
    runner.close()
    assert stub.ran == ["t_a#0"]
    with pytest.raises(RuntimeError):
        runner.run(stub, "t_a#1")  # type: ignore[arg-type]
    assert stub.ran == ["t_a#0"]
    # The refused submission was never counted: nothing is pending.
    assert runner.join_all(timeout=0) is True
    assert runner.errors == []


def test_eager_runner_runs_in_the_calling_thread() -> None:
    seen: list[tuple[str, threading.Thread]] = []

    class Recorder:
        def run_instance(self, instance_name: str) -> None:
            seen.append((instance_name, threading.current_thread()))

    runner = EagerTaskRunner()
    runner.run(Recorder(), "t_a#0")  # type: ignore[arg-type]
    assert seen == [("t_a#0", threading.current_thread())]
    assert runner.join_all() is True


def test_base_runner_must_implement_run() -> None:
    with pytest.raises(NotImplementedError):
        TaskRunner().run(None, "t#0")  # type: ignore[arg-type]
    assert TaskRunner().join_all(timeout=0) is True
