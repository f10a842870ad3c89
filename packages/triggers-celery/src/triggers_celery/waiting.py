"""Waiting for a session's Celery tasks from the process that fired them.

A fire returns once its tasks are sent; scripts, tests and the demo that
want the workflow's outcome poll the session until nothing is scheduled or
running any more.
"""

from __future__ import annotations

import time

from triggers.storage import TriggerStorageBackend
from triggers.types import InstanceStatus

__all__ = ["wait_until_idle"]

_BUSY = frozenset({InstanceStatus.SCHEDULED, InstanceStatus.RUNNING})


def wait_until_idle(storage: TriggerStorageBackend, timeout: float, *, interval: float = 0.1) -> bool:
    """Poll ``storage`` until no instance is scheduled or running; False after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        storage.invalidate_cache()
        if not any(i.status in _BUSY for i in storage.get_unresolved_instances()):
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
