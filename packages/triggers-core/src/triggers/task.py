"""Triggers 2.0's ``triggers.task`` (singular): aliases for ported tasks.

Task code written for Triggers 2.0 imports from here; the names are those of
:mod:`triggers.tasks` and :mod:`triggers.errors`:

``TriggerTask``, ``TaskContext``
    :class:`triggers.tasks.TriggerTask` and :class:`triggers.tasks.TaskContext`.
    A task still implements ``_run(self, context)`` and may ``raise
    self.skip(...)`` or ``raise self.retry(...)``.
``StatusChange``, ``Retry``, ``MaxRetriesExceeded``
    :class:`triggers.errors.StatusChange`, :class:`triggers.errors.Retry` and
    :class:`triggers.errors.MaxRetriesExceeded`.

Triggers 2.0's ``task_body`` decorator, which turned a Celery task into a
trigger task, has no alias: any callable taking a ``TaskContext`` is a task
here, and so is a ``TriggerTask`` subclass.
"""

from __future__ import annotations

from triggers.errors import MaxRetriesExceeded, Retry, StatusChange
from triggers.tasks import TaskContext, TriggerTask

__all__ = ["MaxRetriesExceeded", "Retry", "StatusChange", "TaskContext", "TriggerTask"]
