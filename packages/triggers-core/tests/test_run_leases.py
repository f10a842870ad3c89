"""Run leases: a killed worker's instance runs again; duplicates never run twice.

Two storage objects of one session stand for two workers; a task that raises
``WorkerKilled`` (a BaseException, which the manager does not catch) stands
for a worker killed mid-task. The storage clock is a FakeClock, so a lease
ends when the test advances it, never by waiting.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import core_lease_tasks as tasks
import pytest
from core_toy_backends import FakeClock

from triggers import run_leases
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.registry import storage_backends
from triggers.storage import TriggerStorageBackend
from triggers.types import InstanceStatus, TaskInstance

TTL = 30.0

Opener = Callable[[], TriggerStorageBackend]


@pytest.fixture(params=["memory", "sql-sqlite"])
def open_session(request: pytest.FixtureRequest, uid: str, namespace: str, tmp_path: Path,
                 clock: FakeClock) -> Iterator[Opener]:
    opened: list[TriggerStorageBackend] = []

    def open_() -> TriggerStorageBackend:
        if request.param == "memory":
            storage: TriggerStorageBackend = MemoryStorageBackend(uid, namespace=namespace, clock=clock)
        else:
            storage = storage_backends.get("sql", uid, url=f"sqlite:///{tmp_path / 'leases.db'}",
                                           clock=clock)
        opened.append(storage)
        return storage

    tasks.OPENERS[uid] = open_
    yield open_
    for storage in opened:
        storage.close()
    for registry in (tasks.OPENERS, tasks.RUNS, tasks.GATES, tasks.STARTED):
        registry.pop(uid, None)  # type: ignore[attr-defined]
    tasks.KILL_FIRST.discard(uid)


def _configure(manager: TriggerManager, run: str) -> None:
    manager.update_configuration({
        "t_work": {"after": ["start"], "run": run},
        "t_next": {"after": ["t_work"], "run": "core_lease_tasks.counted"},
    })


def _stored(open_session: Opener, name: str = "t_work#0") -> TaskInstance:
    return open_session()[name]


def _killed_worker(open_session: Opener, uid: str) -> None:
    """Fire in a first worker whose task dies in attempt 1, leaving t_work#0 running."""
    tasks.KILL_FIRST.add(uid)
    manager = TriggerManager(open_session(), run_lease_ttl=TTL)
    _configure(manager, "core_lease_tasks.killed_first")
    with pytest.raises(tasks.WorkerKilled):
        manager.fire("start")


def test_a_running_instance_records_its_attempt_and_lease(
    open_session: Opener, uid: str, clock: FakeClock
) -> None:
    started = open_session().now()
    _killed_worker(open_session, uid)
    instance = _stored(open_session)
    assert instance.status is InstanceStatus.RUNNING
    assert instance.metadata[run_leases.ATTEMPT_KEY] == 1
    assert run_leases.expires_at(instance) == started + timedelta(seconds=TTL)
    assert run_leases.remaining(instance, open_session().now()) == TTL


def test_a_duplicate_while_the_lease_lives_is_a_no_op(
    open_session: Opener, uid: str, clock: FakeClock
) -> None:
    _killed_worker(open_session, uid)
    clock.advance(TTL - 1)
    other = TriggerManager(open_session(), run_lease_ttl=TTL)
    other.run_instance("t_work#0")
    assert other.resume() == []
    assert tasks.RUNS[uid] == [("t_work#0", 1)]
    instance = _stored(open_session)
    assert instance.status is InstanceStatus.RUNNING
    assert run_leases.attempt_of(instance) == 1


def test_redelivery_after_the_lease_ended_takes_over_once(
    open_session: Opener, uid: str, clock: FakeClock
) -> None:
    _killed_worker(open_session, uid)
    clock.advance(TTL)
    other = TriggerManager(open_session(), run_lease_ttl=TTL)
    other.run_instance("t_work#0")
    other.run_instance("t_work#0")  # a duplicate of the redelivery: finished, so nothing
    TriggerManager(open_session(), run_lease_ttl=TTL).run_instance("t_next#0")
    # The body ran twice (at least once), the transitions and the cascade once.
    assert tasks.RUNS[uid] == [("t_work#0", 1), ("t_work#0", 2), ("t_next#0", 1)]
    storage = open_session()
    work = storage["t_work#0"]
    assert work.status is InstanceStatus.FINISHED
    assert work.metadata[run_leases.ATTEMPT_KEY] == 2
    assert work.metadata[run_leases.EXPIRED_ATTEMPTS_KEY] == [1]
    assert run_leases.RUN_LEASE_EXPIRES_KEY not in work.metadata
    assert storage["t_next#0"].status is InstanceStatus.FINISHED
    assert storage["t_next#0"].kwargs["t_work"] == {"attempt": 2}
    assert storage.instance_count("t_next") == 1


def test_resume_makes_an_instance_with_an_ended_lease_runnable(
    open_session: Opener, uid: str, clock: FakeClock
) -> None:
    _killed_worker(open_session, uid)
    runner = tasks.HoldingRunner()
    manager = TriggerManager(open_session(), runner=runner, run_lease_ttl=TTL)
    assert manager.resume() == []
    clock.advance(TTL + 1)
    assert manager.resume() == ["t_work#0"]
    assert runner.sent == ["t_work#0"]
    instance = _stored(open_session)
    assert instance.status is InstanceStatus.SCHEDULED
    assert instance.metadata[run_leases.EXPIRED_ATTEMPTS_KEY] == [1]
    assert run_leases.RUN_LEASE_EXPIRES_KEY not in instance.metadata
    # The message the resume sent runs it as attempt 2; a second copy does nothing.
    manager.run_instance("t_work#0")
    manager.run_instance("t_work#0")
    instance = _stored(open_session)
    assert instance.status is InstanceStatus.FINISHED
    assert run_leases.attempt_of(instance) == 2
    assert [run for run in tasks.RUNS[uid] if run[0] == "t_work#0"] == [("t_work#0", 1), ("t_work#0", 2)]
    assert runner.sent == ["t_work#0", "t_next#0"]  # the cascade, once


def test_an_attempt_that_lost_its_lease_cannot_record_an_outcome(
    open_session: Opener, uid: str, clock: FakeClock
) -> None:
    tasks.GATES[uid], tasks.STARTED[uid] = threading.Event(), threading.Event()
    slow = TriggerManager(open_session(), runner=tasks.HoldingRunner(), run_lease_ttl=TTL)
    _configure(slow, "core_lease_tasks.slow_first")
    slow.fire("start")
    errors: list[BaseException] = []

    def first_attempt() -> None:
        try:
            slow.run_instance("t_work#0")
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=first_attempt)
    thread.start()
    try:
        assert tasks.STARTED[uid].wait(timeout=60)
        clock.advance(TTL)
        fast_runner = tasks.HoldingRunner()
        TriggerManager(open_session(), runner=fast_runner, run_lease_ttl=TTL).run_instance("t_work#0")
    finally:
        tasks.GATES[uid].set()
        thread.join(timeout=60)
    assert errors == []
    instance = _stored(open_session)
    assert instance.status is InstanceStatus.FINISHED
    assert instance.metadata["result"] == {"attempt": 2}  # attempt 1's outcome was refused
    assert fast_runner.sent == ["t_next#0"]
    assert open_session().instance_count("t_next") == 1


def test_the_heartbeat_renews_the_lease_while_the_task_runs(uid: str, namespace: str) -> None:
    # Real time here: the heartbeat renews every ttl / 3 seconds of the monotonic clock.
    def open_() -> TriggerStorageBackend:
        return MemoryStorageBackend(uid, namespace=namespace)

    tasks.OPENERS[uid] = open_
    try:
        manager = TriggerManager(open_(), run_lease_ttl=0.6)
        manager.update_configuration({"t_long": {"after": ["start"], "run": "core_lease_tasks.wait_for_renewal"}})
        manager.fire("start")
        instance = open_()["t_long#0"]
        assert instance.status is InstanceStatus.FINISHED, instance.metadata.get("error")
        assert instance.metadata["result"] == {"renewals": 2}
        assert run_leases.attempt_of(instance) == 1
        assert run_leases.EXPIRED_ATTEMPTS_KEY not in instance.metadata
    finally:
        tasks.OPENERS.pop(uid, None)
        tasks.RUNS.pop(uid, None)


def test_a_task_that_handed_off_its_work_keeps_no_lease(
    open_session: Opener, clock: FakeClock
) -> None:
    manager = TriggerManager(open_session(), run_lease_ttl=TTL)
    manager.update_configuration({"t_ext": {"after": ["start"], "run": "core_sample_tasks.hand_off"}})
    manager.fire("start")
    clock.advance(TTL * 10)
    assert manager.resume() == []
    instance = _stored(open_session, "t_ext#0")
    assert instance.status is InstanceStatus.RUNNING
    assert run_leases.expires_at(instance) is None


@pytest.mark.parametrize("ttl", [0, -1, True, "5", float("nan")])
def test_run_lease_ttl_must_be_a_positive_number(memory_storage: MemoryStorageBackend, ttl: object) -> None:
    with pytest.raises(ValueError, match="run_lease_ttl must be a positive number"):
        TriggerManager(memory_storage, run_lease_ttl=ttl)  # type: ignore[arg-type]
