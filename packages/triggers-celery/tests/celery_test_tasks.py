"""Task callables the test workers run (``run: celery_test_tasks.NAME``).

Each run appends one JSON line to the file named by ``TRIGGERS_TEST_RUN_LOG``
(appends of one short line are atomic), so the test can count every run of
every task body across worker processes, including those a SIGKILL ended.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from celery import current_task

from triggers import run_leases
from triggers.tasks import TaskContext


def _log(context: TaskContext, event: str) -> int:
    attempt = run_leases.attempt_of(context.task_instance)
    delivery = dict(getattr(current_task.request, "delivery_info", None) or {})
    line = json.dumps({"event": event, "pid": os.getpid(), "session": context.session_uid,
                       "instance": context.task_instance.name, "attempt": attempt,
                       "routingKey": delivery.get("routing_key")})
    with open(os.environ["TRIGGERS_TEST_RUN_LOG"], "a") as log:
        log.write(line + "\n")
    return attempt


def step(context: TaskContext) -> Mapping[str, Any]:
    """Finish at once, saying which process ran it."""
    _log(context, "ran")
    return {"pid": os.getpid()}


def held_first(context: TaskContext) -> Mapping[str, Any]:
    """Attempt 1 waits (up to a minute) for the file TRIGGERS_TEST_RELEASE; others finish."""
    attempt = _log(context, "started")
    if attempt == 1:
        release = Path(os.environ["TRIGGERS_TEST_RELEASE"])
        deadline = time.monotonic() + 60
        while not release.exists() and time.monotonic() < deadline:
            time.sleep(0.05)
    _log(context, "ran")
    return {"pid": os.getpid(), "attempt": attempt}
