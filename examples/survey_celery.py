"""The Celery app of the survey demo, for ``./run demo --runner celery``.

The demo fires in its own process and the tasks run on Celery workers. Start
a worker first, in another terminal, from the repository root::

    ./run celery --workdir examples -A survey_celery worker --pool solo

then run ``./run demo --runner celery``. The broker is
``TRIGGERS_DEMO_BROKER`` (default: the Redis on 127.0.0.1:6379, database 0;
``amqp://guest:guest@127.0.0.1:5672//`` for RabbitMQ) and the queue
``TRIGGERS_DEMO_QUEUE`` (default ``triggers-demo``); set the same values for
the worker and the demo.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from celery import Celery

from triggers_celery import CeleryTaskRunner

# The tasks are configured as "survey_tasks.NAME": importable on the worker too.
# Appended even when present: `celery --workdir examples -A survey_celery`
# puts the working directory on sys.path only while it imports this module.
EXAMPLES_DIR = str(Path(__file__).resolve().parent)
sys.path.append(EXAMPLES_DIR)

BROKER = os.environ.get("TRIGGERS_DEMO_BROKER", "redis://127.0.0.1:6379/0")
QUEUE = os.environ.get("TRIGGERS_DEMO_QUEUE", "triggers-demo")

app = Celery("survey-demo", broker=BROKER)
app.conf.update(
    task_default_queue=QUEUE,
    worker_prefetch_multiplier=1,
    broker_connection_retry_on_startup=True,
    task_serializer="json",
    accept_content=["json"],
)
runner = CeleryTaskRunner(app)
"""Sends the survey's tasks to the workers; the workers send the cascades on."""
