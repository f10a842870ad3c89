"""Tasks the conformance suite configures (``run: triggers_conformance.tasks.NAME``).

Each does the least that makes its effect observable through the session: a
finished task's return value becomes the kwargs its cascade delivers to the
next task, so tests read what a task saw from the next task's instance.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triggers.errors import RetryTask
from triggers.tasks import TaskContext, TriggerTask

__all__ = ["Echo", "annotate", "fail", "hand_off", "log_error", "noop", "retry_once", "warn"]


def noop(context: TaskContext) -> None:
    """Finish without a result."""


class Echo(TriggerTask):
    """Return the (``withParams``-merged) kwargs the task received."""

    def _run(self, context: TaskContext) -> Mapping[str, Any]:
        return {"received": context.trigger_kwargs, "instance": context.task_instance.name}


def fail(context: TaskContext) -> None:
    """Fail unless some trigger's kwargs say ``{"ok": True}`` (so a replay can succeed)."""
    if any(kwargs.get("ok") is True for kwargs in context.trigger_kwargs.values()):
        return
    raise ValueError(f"conformance task failed on purpose in {context.task_instance.name}")


def warn(context: TaskContext) -> Mapping[str, Any]:
    """Finish, after logging a warning the session must remember."""
    context.get_logger_context().warning("conformance warning from %s", context.task_instance.name)
    return {"warned": True}


def log_error(context: TaskContext) -> None:
    """Finish, after logging an error (which needs an operator's attention)."""
    context.get_logger_context().error("conformance error from %s", context.task_instance.name)


def retry_once(context: TaskContext) -> Mapping[str, Any]:
    """Ask to be retried on the first run; finish on the second."""
    if not context.task_instance.metadata.get("retries"):
        raise RetryTask("first attempt always retries", max_retries=2)
    return {"attempt": 2}


def annotate(context: TaskContext) -> None:
    """Write into the instance's metadata, which the session must keep."""
    context.task_instance.metadata["annotation"] = {"by": context.task_instance.name, "n": 1}


def hand_off(context: TaskContext) -> None:
    """Leave the instance running, as a task that handed its work to another system."""
    context.set_status("running")
