"""The Celery app of the tests, in the test process and in the workers they start.

``celery -A celery_test_app worker`` imports this module with the
``TRIGGERS_TEST_*`` variables set and finds ``app``; the test process calls
:func:`make_app` with the same values to send to those workers.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from celery import Celery

from triggers_celery import CeleryTaskRunner, RunMessage


class DuplicatingRunner(CeleryTaskRunner):
    """Publishes every message twice, as a broker that delivers duplicates would."""

    def send(self, message: RunMessage, *, countdown: float | None = None,
             routing: Mapping[str, Any] | None = None) -> None:
        super().send(message, countdown=countdown, routing=routing)
        super().send(message, countdown=countdown, routing=routing)


def make_app(broker: str, queue: str, *, run_lease_ttl: float = 60.0,
             duplicate: bool = False) -> tuple[Celery, CeleryTaskRunner]:
    """A Celery app on ``broker`` whose default queue is ``queue``, and its triggers runner.

    A second runner, ``using: "side"``, sends to the queue ``QUEUE-side``.
    """
    app = Celery(f"triggers-tests-{queue}", broker=broker, set_as_current=False)
    app.conf.update(
        task_default_queue=queue,
        worker_prefetch_multiplier=1,
        broker_connection_retry_on_startup=True,
        broker_transport_options={"visibility_timeout": 30},
        task_serializer="json",
        accept_content=["json"],
    )
    runner_class = DuplicatingRunner if duplicate else CeleryTaskRunner
    default = runner_class(app, run_lease_ttl=run_lease_ttl)
    runner_class(app, run_lease_ttl=run_lease_ttl, name="side", queue=f"{queue}-side")
    return app, default


if "TRIGGERS_TEST_BROKER" in os.environ:
    app, runner = make_app(
        os.environ["TRIGGERS_TEST_BROKER"],
        os.environ["TRIGGERS_TEST_QUEUE"],
        run_lease_ttl=float(os.environ.get("TRIGGERS_TEST_RUN_LEASE_TTL", "60")),
        duplicate=os.environ.get("TRIGGERS_TEST_DUPLICATE") == "1",
    )
