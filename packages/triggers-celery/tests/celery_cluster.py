"""One test's Celery setup: its queues, workers, run log and session store."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from celery_test_app import make_app
from celery_workers import Worker, read_runs, start_worker
from kombu import Connection

from triggers.registry import storage_backends
from triggers.storage import TriggerStorageBackend


@dataclass
class Cluster:
    """One test's queues, workers, run log and session store."""

    broker: str
    queue: str
    directory: Path
    storage_options: dict[str, Any]
    run_lease_ttl: float = 60.0
    duplicate: bool = False
    workers: list[Worker] = field(default_factory=list)
    queues: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.queues = [self.queue]
        self.app, self.runner = make_app(self.broker, self.queue, run_lease_ttl=self.run_lease_ttl,
                                         duplicate=self.duplicate)

    @property
    def run_log(self) -> Path:
        return self.directory / "runs.jsonl"

    @property
    def release(self) -> Path:
        return self.directory / "release"

    def extra_queue(self, suffix: str) -> str:
        name = f"{self.queue}-{suffix}"
        self.queues.append(name)
        return name

    @property
    def env(self) -> dict[str, str]:
        """The variables ``celery_test_app`` builds this cluster's app from."""
        return {"TRIGGERS_TEST_BROKER": self.broker, "TRIGGERS_TEST_QUEUE": self.queue,
                "TRIGGERS_TEST_RUN_LEASE_TTL": str(self.run_lease_ttl),
                "TRIGGERS_TEST_DUPLICATE": "1" if self.duplicate else "0",
                "TRIGGERS_TEST_RUN_LOG": str(self.run_log), "TRIGGERS_TEST_RELEASE": str(self.release)}

    def start(self, count: int, *, pool: str = "solo", concurrency: int = 1) -> list[Worker]:
        env = self.env
        started = [start_worker(f"w{len(self.workers) + i}-{self.queue}", self.directory, env,
                                self.queues, pool=pool, concurrency=concurrency) for i in range(count)]
        self.workers += started
        for worker in started:
            worker.wait_ready()
        return started

    def storage(self, uid: str) -> TriggerStorageBackend:
        return storage_backends.get("sql", uid, **self.storage_options)

    def runs(self) -> list[dict[str, Any]]:
        return read_runs(self.run_log)

    def logs(self) -> str:
        return "\n".join(f"--- {w.name}\n{w.tail()}" for w in self.workers)

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        with Connection(self.broker, connect_timeout=5) as connection:
            channel = connection.default_channel
            for queue in self.queues:
                try:
                    channel.queue_delete(queue)
                except Exception:
                    pass


ClusterFactory = Callable[..., Cluster]
