"""CeleryTaskRunner against real brokers and real ``celery worker`` processes.

Sessions live on PostgreSQL; the tasks (``celery_test_tasks``) log every run
of their body to a file, so a test counts runs across worker processes,
including runs a SIGKILL cut short. Waiting is by condition (the session
has nothing scheduled or running), never by a fixed sleep.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter

import pytest
from celery import Celery
from celery_cluster import ClusterFactory
from celery_workers import TESTS_DIR

from triggers import run_leases
from triggers.errors import ConfigurationError
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.registry import storage_backends
from triggers.types import InstanceStatus
from triggers_celery import CeleryTaskRunner, RunMessage, run_message, wait_until_idle
from triggers_celery.runner import named_runners

WAIT = 90.0

CHAIN = {
    "t_first": {"after": ["start"], "run": "celery_test_tasks.step", "using": "celery"},
    "t_second": {"after": ["t_first"], "run": "celery_test_tasks.step", "using": "celery"},
    "t_third": {"after": ["t_second"], "run": "celery_test_tasks.step", "using": "celery"},
    "t_page": {"after": ["t_first"], "andEvery": "page", "run": "celery_test_tasks.step",
               "using": "celery"},
}


def _uid() -> str:
    return f"celery-{uuid.uuid4().hex[:12]}"


@pytest.mark.parametrize("broker", ["rabbitmq", "redis"])
def test_tasks_and_cascades_run_on_the_workers(cluster: ClusterFactory, broker: str) -> None:
    setup = cluster(broker)
    other_queue = setup.extra_queue("other")
    side_queue = setup.extra_queue("side")
    setup.start(1)
    storage = setup.storage(_uid())
    manager = TriggerManager(storage, runners=named_runners(setup.app))
    configuration = {**CHAIN, "t_third": {**CHAIN["t_third"], "celery": {"queue": other_queue}},
                     "t_second": {**CHAIN["t_second"], "using": "side"}}
    manager.update_configuration(configuration)
    assert manager.fire("start") == ["t_first#0"]
    for page in range(2):
        manager.fire("page", {"page": page})
    assert setup.runner.join_all(timeout=WAIT), setup.logs()

    storage.invalidate_cache()
    statuses = {name: i.status for name, i in storage.instances.items()}
    assert statuses == dict.fromkeys(
        ["t_first#0", "t_second#0", "t_third#0", "t_page#0", "t_page#1"], InstanceStatus.FINISHED
    ), setup.logs()
    runs = setup.runs()
    assert Counter(run["instance"] for run in runs) == dict.fromkeys(statuses, 1)
    worker_pid = setup.workers[0].process.pid
    assert {run["pid"] for run in runs} == {worker_pid}  # solo pool: the worker process itself
    routed = {run["instance"]: run["routingKey"] for run in runs}
    assert routed["t_third#0"] == other_queue  # the task's celery directive
    assert routed["t_second#0"] == side_queue  # using: side, sent by the worker's 'side' runner
    assert routed["t_first#0"] == setup.queue
    # The cascade t_second -> t_third was sent by the worker, not by this process.
    assert storage["t_second#0"].kwargs["t_first"] == {"pid": worker_pid}


def test_duplicate_messages_never_run_a_task_twice(cluster: ClusterFactory) -> None:
    setup = cluster("redis", duplicate=True)  # every message is published twice, cascades too
    setup.start(2)
    storage = setup.storage(_uid())
    manager = TriggerManager(storage, runners={"celery": setup.runner})
    manager.update_configuration(CHAIN)
    manager.fire("start")
    for page in range(3):
        manager.fire("page", {"page": page})
    assert setup.runner.join_all(timeout=WAIT), setup.logs()

    storage.invalidate_cache()
    names = sorted(storage.instances)
    assert names == ["t_first#0", "t_page#0", "t_page#1", "t_page#2", "t_second#0", "t_third#0"]
    assert all(storage[name].status is InstanceStatus.FINISHED for name in names)
    assert Counter(run["instance"] for run in setup.runs()) == dict.fromkeys(names, 1), setup.logs()
    assert all(run_leases.attempt_of(storage[name]) == 1 for name in names)
    # Only t_first was sent from here (twice); the pages waited for it and were sent by the workers.
    assert setup.runner.sent == 2


def test_a_worker_killed_mid_task_loses_nothing_and_runs_nothing_twice(cluster: ClusterFactory) -> None:
    setup = cluster("rabbitmq", run_lease_ttl=2.0)
    setup.start(2)
    storage = setup.storage(_uid())
    manager = TriggerManager(storage, runners={"celery": setup.runner})
    manager.update_configuration({
        "t_held": {"after": ["start"], "run": "celery_test_tasks.held_first", "using": "celery"},
        "t_after": {"after": ["t_held"], "run": "celery_test_tasks.step", "using": "celery"},
    })
    manager.fire("start")
    deadline = time.monotonic() + WAIT
    while not any(run["event"] == "started" for run in setup.runs()):
        assert time.monotonic() < deadline, setup.logs()
        time.sleep(0.05)
    victim_pid = setup.runs()[0]["pid"]
    victim = next(w for w in setup.workers if w.process.pid == victim_pid)
    victim.kill()  # SIGKILL mid-task: attempt 1 never records an outcome

    assert setup.runner.join_all(timeout=WAIT), setup.logs()
    storage.invalidate_cache()
    held = storage["t_held#0"]
    assert held.status is InstanceStatus.FINISHED, setup.logs()
    assert held.metadata[run_leases.ATTEMPT_KEY] == 2
    assert held.metadata[run_leases.EXPIRED_ATTEMPTS_KEY] == [1]
    survivor_pid = next(w for w in setup.workers if w is not victim).process.pid
    assert held.metadata["result"] == {"pid": survivor_pid, "attempt": 2}
    assert storage["t_after#0"].status is InstanceStatus.FINISHED
    assert storage.instance_count("t_after") == 1
    runs = [(run["instance"], run["attempt"], run["event"]) for run in setup.runs()]
    assert runs == [("t_held#0", 1, "started"), ("t_held#0", 2, "started"), ("t_held#0", 2, "ran"),
                    ("t_after#0", 1, "ran")]


# --------------------------------------------------------------------------
# Messages and routing, without a broker
# --------------------------------------------------------------------------


def _offline_runner(**settings: object) -> CeleryTaskRunner:
    return CeleryTaskRunner(Celery("offline", broker="memory://", set_as_current=False), **settings)  # type: ignore[arg-type]


def test_a_message_carries_the_selection_as_data(tmp_path: object) -> None:
    runner = _offline_runner()
    storage = storage_backends.get("memory", "s-1", namespace="celery-offline")
    message = runner.message_for(TriggerManager(storage), "t#0", 1)
    assert message.to_data() == {
        "format": "triggers-run/1", "storage": {"backend": "memory", "options": {"namespace": "celery-offline"}},
        "uid": "s-1", "instance": "t#0", "attempt": 1,
    }
    hidden = _offline_runner(ship_options=False).message_for(TriggerManager(storage), "t#0", 1)
    assert hidden.to_data()["storage"] == {"backend": "memory"}
    assert RunMessage.from_data(message.to_data()) == message


def test_options_that_are_not_data_are_refused_by_name() -> None:
    storage = storage_backends.get("memory", "s-2", clock=time.time)
    message = _offline_runner().message_for(TriggerManager(storage), "t#0", 1)
    with pytest.raises(ConfigurationError, match=r"option 'clock' .* cannot travel in a Celery message"):
        message.to_data()


@pytest.mark.parametrize(("body", "complaint"), [
    ([], "must be a JSON object"),
    ({"format": "other"}, "must have format"),
    ({"format": "triggers-run/1", "storage": {}}, "needs 'storage'"),
    ({"format": "triggers-run/1", "storage": {"backend": "sql"}, "uid": "", "instance": "t#0",
      "attempt": 1}, "needs 'uid'"),
    ({"format": "triggers-run/1", "storage": {"backend": "sql"}, "uid": "u", "instance": "t#0",
      "attempt": 0}, "needs 'attempt'"),
])
def test_a_malformed_message_is_refused_saying_what_is_wrong(body: object, complaint: str) -> None:
    with pytest.raises(ConfigurationError, match=complaint):
        RunMessage.from_data(body)


def test_a_bad_routing_directive_is_refused_naming_the_task() -> None:
    storage = MemoryStorageBackend("s-3", namespace="celery-offline")
    runner = _offline_runner()
    manager = TriggerManager(storage, runners={"celery": runner})
    manager.update_configuration({"t_x": {"after": ["go"], "run": "celery_test_tasks.step",
                                          "using": "celery", "celery": {"queues": "x"}}})
    with pytest.raises(ConfigurationError, match="task 't_x' directive 'celery': unknown option 'queues'"):
        runner.routing_for(storage.tasks["t_x"])
    with pytest.raises(ConfigurationError, match="option 'countdown' must not be negative"):
        _offline_runner(countdown=-1)


def test_a_worker_without_options_uses_its_own_configuration() -> None:
    runner = _offline_runner(worker_storage={"backend": "memory", "options": {"namespace": "mine"}})
    message = RunMessage(backend="memory", options=None, uid="s-4", instance="t#0", attempt=1)
    assert runner.storage_config_for(message) == {"backend": "memory", "options": {"namespace": "mine"}}
    other = RunMessage(backend="sql", options=None, uid="s-4", instance="t#0", attempt=1)
    with pytest.raises(ConfigurationError, match="names storage backend 'sql' but this worker is configured for 'memory'"):
        runner.storage_config_for(other)
    assert run_message(runner.app, message.to_data()) == "unknown"  # no such instance: dropped


def test_wait_until_idle_gives_up_on_a_busy_session() -> None:
    storage = MemoryStorageBackend("s-5", namespace="celery-offline")
    with storage.acquire_lock():
        storage.update_configuration({"t": {"after": ["go"], "run": "celery_test_tasks.step"}})
        storage.create_instance("t", status="scheduled", kwargs={"go": {}})
        storage.save()
    assert wait_until_idle(storage, 0) is False


def test_the_triggers_command_sends_to_the_workers_with_runner_celery(cluster: ClusterFactory) -> None:
    setup = cluster("redis")
    setup.start(1)
    uid = _uid()
    with setup.storage(uid) as storage:
        TriggerManager(storage, runners={"celery": setup.runner}).update_configuration(CHAIN)
    flags = ["--backend", "sql", "--option", f"url={setup.storage_options['url']}",
             "--option", f"table_prefix={setup.storage_options['table_prefix']}"]
    env = {**os.environ, **setup.env, "TRIGGERS_CELERY_APP": "celery_test_app:app",
           "PYTHONPATH": os.pathsep.join([str(TESTS_DIR), os.environ.get("PYTHONPATH", "")])}
    result = subprocess.run([sys.executable, "-m", "triggers", *flags, "fire", uid, "start", "--runner", "celery"],
                            capture_output=True, text=True, timeout=120, check=False, env=env)
    assert result.returncode == 0, (result.stderr, setup.logs())
    # The command's runner waits (join_all) until the workers ran t_first and its cascades.
    assert "scheduled: t_first#0 (now finished)" in result.stdout
    with setup.storage(uid) as storage:
        assert storage["t_third#0"].status is InstanceStatus.FINISHED
    assert {run["pid"] for run in setup.runs()} == {setup.workers[0].process.pid}


def test_a_rerun_after_retry_task_waits_retry_countdown(namespace: str) -> None:
    # kombu's in-process memory transport: a real broker transport, no server.
    app = Celery("offline-retry", broker="memory://", set_as_current=False)
    runner = CeleryTaskRunner(app, queue=f"q-{namespace}")
    storage = storage_backends.get("memory", "s-6", namespace=namespace)
    manager = TriggerManager(storage, runners={"celery": runner})
    manager.update_configuration({"t": {"after": ["go"], "run": "celery_test_tasks.step", "using": "celery",
                                        "celery": {"retry_countdown": 30}}})
    manager.fire("go")
    with storage.acquire_lock():  # what RetryTask leaves: rescheduled, one retry counted
        storage["t#0"].metadata["retries"] = 1
        storage.save()
    runner.run(manager, "t#0")
    with app.connection_for_read() as connection:
        queue = connection.SimpleQueue(f"q-{namespace}")
        first, rerun = queue.get(timeout=5), queue.get(timeout=5)
        for message in (first, rerun):
            message.ack()
    assert first.headers.get("eta") is None
    assert rerun.headers["eta"] is not None  # sent to run 30 s later
    assert first.payload[0][0]["instance"] == rerun.payload[0][0]["instance"] == "t#0"
