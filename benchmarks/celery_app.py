"""The Celery app of the Celery benchmark, in the benchmark and in its workers.

``celery -A benchmarks.celery_app worker`` imports it with
``TRIGGERS_BENCH_BROKER`` and ``TRIGGERS_BENCH_QUEUE`` set (the benchmark
sets them for the workers it starts).
"""

from __future__ import annotations

import os

from celery import Celery

from triggers.tasks import TaskContext
from triggers_celery import CeleryTaskRunner


def make_app(broker: str, queue: str) -> tuple[Celery, CeleryTaskRunner]:
    """The app on ``broker`` with ``queue`` as its default queue, and its runner."""
    app = Celery(f"triggers-bench-{queue}", broker=broker, set_as_current=False)
    app.conf.update(task_default_queue=queue, worker_prefetch_multiplier=4,
                    broker_connection_retry_on_startup=True, task_serializer="json",
                    accept_content=["json"])
    return app, CeleryTaskRunner(app)


def noop(context: TaskContext) -> None:
    """The benchmark's task: nothing, so what is measured is the runner's own cost."""


if "TRIGGERS_BENCH_BROKER" in os.environ:
    app, runner = make_app(os.environ["TRIGGERS_BENCH_BROKER"], os.environ["TRIGGERS_BENCH_QUEUE"])
