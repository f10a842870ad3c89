"""A broker restart during a run: a private Redis (append-only file, fsync always) is
stopped and started again while a worker runs a task, and a fire meets the broker down.

Nothing is lost: the running task's outcome and cascade are recorded (the
session is in PostgreSQL, not in the broker) and its cascade is sent once
the broker is back; the fire whose message could not be sent leaves its
instance scheduled, which ``resume()`` hands on. Nothing runs twice.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest
from celery_cluster import ClusterFactory
from kombu import Connection

from triggers.manager import TriggerManager
from triggers.types import InstanceStatus
from triggers_conformance.servers import Server, missing, port_answers

WAIT = 90.0


class PrivateRedis:
    """A redis-server of this test alone, which it may stop and start at will."""

    def __init__(self, directory: Path) -> None:
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self.directory = directory
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory),
             "--appendonly", "yes", "--appendfsync", "always", "--save", ""],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while not self._answers():
            assert self.process.poll() is None and time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.05)

    def _answers(self) -> bool:
        try:
            with Connection(self.url, connect_timeout=1) as connection:
                connection.ensure_connection(max_retries=1)
            return True
        except Exception:
            return False

    def stop(self) -> None:
        """SIGTERM: redis writes its append-only file and exits."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        assert not port_answers("127.0.0.1", self.port)


@pytest.fixture
def private_redis(tmp_path: Path) -> PrivateRedis:
    if shutil.which("redis-server") is None:
        missing(Server("Redis (private)", "127.0.0.1", 0, install="apt-get install redis-server"),
                "the test starts its own redis-server, which is not installed")
    redis = PrivateRedis(tmp_path)
    redis.start()
    yield redis  # type: ignore[misc]
    redis.stop()


def test_a_broker_restart_during_a_run_loses_nothing(private_redis: PrivateRedis,
                                                      cluster: ClusterFactory) -> None:
    # private_redis first: it is stopped after the cluster deleted its queues.
    setup = cluster(private_redis.url)
    setup.start(1)
    held = setup.storage(f"restart-{uuid.uuid4().hex[:8]}")
    manager = TriggerManager(held, runners={"celery": setup.runner})
    manager.update_configuration({
        "t_held": {"after": ["start"], "run": "celery_test_tasks.held_first", "using": "celery"},
        "t_after": {"after": ["t_held"], "run": "celery_test_tasks.step", "using": "celery"},
    })
    other = setup.storage(f"restart-{uuid.uuid4().hex[:8]}")
    other_manager = TriggerManager(other, runners={"celery": setup.runner})
    other_manager.update_configuration(
        {"t_solo": {"after": ["start"], "run": "celery_test_tasks.step", "using": "celery"}})

    manager.fire("start")
    deadline = time.monotonic() + WAIT
    while not setup.runs():
        assert time.monotonic() < deadline, setup.logs()
        time.sleep(0.05)

    private_redis.stop()  # t_held#0 is running on the worker
    assert other_manager.fire("start") == ["t_solo#0"]  # saved; its message cannot be sent
    assert len(setup.runner.errors) == 1
    private_redis.start()
    setup.release.touch()  # t_held#0 finishes; its cascade is sent once the broker answers
    assert other_manager.resume() == ["t_solo#0"]

    assert setup.runner.join_all(timeout=WAIT), setup.logs()
    held.invalidate_cache()
    other.invalidate_cache()
    assert {n: i.status for n, i in held.instances.items()} == {
        "t_held#0": InstanceStatus.FINISHED, "t_after#0": InstanceStatus.FINISHED}, setup.logs()
    assert other["t_solo#0"].status is InstanceStatus.FINISHED
    ran = Counter(run["instance"] for run in setup.runs() if run["event"] == "ran")
    assert ran == {"t_held#0": 1, "t_after#0": 1, "t_solo#0": 1}
