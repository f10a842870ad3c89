"""Task callables for the triggers-core tests (``run: core_sample_tasks.NAME``)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from triggers.tasks import TaskContext, TriggerTask
from triggers.values import MAX_DEPTH

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


RUNS: list[str] = []
"""``"<session uid>/<instance name>"`` for every run of :func:`count_runs`."""


def count_runs(context: TaskContext) -> None:
    """Finish, after recording that it ran (tests count by their session uid)."""
    RUNS.append(f"{context.session_uid}/{context.task_instance.name}")


GATES: dict[str, threading.Event] = {}
"""Events by session uid that :func:`wait_for_gate` blocks on."""


def wait_for_gate(context: TaskContext) -> None:
    """Block until the test opens its session's gate (at most a minute)."""
    if not GATES[context.session_uid].wait(timeout=60):
        raise TimeoutError(f"the gate of session {context.session_uid!r} was never opened")


def hand_off(context: TaskContext) -> None:
    """Stay running, as a task that handed its work to another system."""
    context.set_status("running")


def big_result(context: TaskContext) -> Mapping[str, Any]:
    """Return a result of ``size`` characters (the kwargs of trigger ``start``)."""
    return {"blob": "x" * int(context.trigger_kwargs["start"]["size"])}


WHEN = datetime(2024, 1, 1, 12, tzinfo=timezone(timedelta(hours=2)))


def annotate(context: TaskContext) -> None:
    """Write metadata that only loads back normalized (a tuple, a non-UTC datetime)."""
    metadata = context.task_instance.metadata
    metadata["note"] = "written by the task"
    metadata["pair"] = (1, 2)
    metadata["when"] = WHEN


def annotate_unstorable(context: TaskContext) -> Mapping[str, Any]:
    """Write a set (not storable) into the metadata, then return a result."""
    context.task_instance.metadata["tags"] = {"a", "b"}
    return {"would": "cascade"}


def annotate_too_deep(context: TaskContext) -> None:
    """Write a value nested MAX_DEPTH levels: fine alone, one level too deep once
    stored inside the metadata mapping."""
    value: Any = "leaf"
    for _ in range(MAX_DEPTH):
        value = [value]
    context.task_instance.metadata["deep"] = value


def give_up(context: TaskContext) -> None:
    """End failed without raising, as a task that judged its input unusable."""
    context.set_status("failed")


SEEN: dict[str, dict[str, str]] = {}
"""``"<session uid>/<instance name>"`` -> the stored statuses :func:`record_stored_statuses` saw."""


def record_stored_statuses(context: TaskContext) -> None:
    """Finish, after recording every instance's status as stored while this one runs."""
    from triggers.memory import MemoryStorageBackend

    storage = context.manager.storage
    assert isinstance(storage, MemoryStorageBackend)
    fresh = MemoryStorageBackend(storage.uid, namespace=storage.namespace)
    SEEN[f"{context.session_uid}/{context.task_instance.name}"] = {
        name: instance.status.value for name, instance in fresh.instances.items()
    }


def explode(context: TaskContext) -> None:
    """Fail by raising, naming the kwargs it received."""
    raise RuntimeError(f"boom with {context.trigger_kwargs}")


def spam_check(context: TaskContext) -> None:
    """Fail inside the logger's block with context attached (one value not storable)."""
    from triggers.exceptions import with_context

    with context.get_logger_context({"app_version": "1.2"}):
        raise with_context(ValueError("failed the spam check"), {"score": 0.2, "seen": {"x"}})


class RetryWithContext(TriggerTask):
    """Replay itself once, naming the error (with context) that made it retry."""

    def _run(self, context: TaskContext) -> Mapping[str, Any]:
        from triggers.exceptions import with_context

        if self.request.retries == 0:
            raise self.retry(exc=with_context(TimeoutError("api slow"), {"endpoint": "/v1"}))
        return {"attempt": self.request.retries}
