"""Run Triggers tasks on Celery workers (the ``celery`` task runner).

``CeleryTaskRunner(app)`` sends each scheduled instance as one Celery task of
the application's own app; its workers run it through the trigger manager,
cascade there and send on what the cascade schedules. Run leases
(:mod:`triggers.run_leases`) make a worker killed mid-task harmless: the task
body runs at least once, every state transition and cascade exactly once.
"""

from triggers_celery.message import MESSAGE_FORMAT, RunMessage
from triggers_celery.runner import (
    APP_ENV,
    DIRECTIVE,
    TASK_NAME,
    CeleryTaskRunner,
    install,
    runner_for_app,
)
from triggers_celery.waiting import wait_until_idle
from triggers_celery.worker import run_message

__all__ = [
    "APP_ENV",
    "DIRECTIVE",
    "MESSAGE_FORMAT",
    "TASK_NAME",
    "CeleryTaskRunner",
    "RunMessage",
    "install",
    "named_runners",
    "run_message",
    "runner_for_app",
    "wait_until_idle",
]
