"""Task callables for the triggers-core tests (``run: core_sample_tasks.NAME``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triggers.tasks import TaskContext, TriggerTask

NOT_CALLABLE = 42


def name_of_instance(context: TaskContext) -> Mapping[str, Any]:
    """Finish, passing the instance name on to the cascade."""
    return {"ran": context.task_instance.name}


class Holder:
    @staticmethod
    def run(context: TaskContext) -> Mapping[str, Any]:
        return {"holder": True}


class ClassTask(TriggerTask):
    """Counts its instances, so a test can see a fresh object per run."""

    created = 0

    def __init__(self) -> None:
        type(self).created += 1

    def _run(self, context: TaskContext) -> Mapping[str, Any]:
        return {"class_task": context.trigger_kwargs}
