"""Triggers 2.0's logging and exception context (issue 16).

``context.get_logger_context(context)`` attaches a dict to every record, an
exception leaving the logger's ``with`` block is logged with the context that
``with_context`` attached to it, and a failed instance keeps that context in
``metadata["exceptionContext"]``.
"""

from __future__ import annotations

import logging

import pytest

from triggers.errors import StatusChange
from triggers.exceptions import with_context
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.tasks import TaskContext
from triggers.types import InstanceStatus, TaskConfig, TaskInstance


def make_context(manager: TriggerManager) -> TaskContext:
    config = TaskConfig.from_mapping("t_log", {"after": ["start"], "run": "core_sample_tasks.name_of_instance"})
    return TaskContext(manager, TaskInstance("t_log#0", config, kwargs={"start": {}}))


@pytest.fixture
def context(memory_storage: MemoryStorageBackend) -> TaskContext:
    return make_context(TriggerManager(memory_storage))


def test_a_context_given_to_the_logger_is_on_every_record(
    context: TaskContext, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="triggers.tasks.t_log"),
        context.get_logger_context({"app_version": "1.2"}) as log,
    ):
        log.info("one")
        log.warning("two", extra={"context": {"page": 3, "app_version": "1.3"}})
    first, second = caplog.records
    assert first.context == {"app_version": "1.2"}  # type: ignore[attr-defined]
    # A record's own context is merged over the logger's.
    assert second.context == {"app_version": "1.3", "page": 3}  # type: ignore[attr-defined]
    assert second.triggers_instance == "t_log#0"  # type: ignore[attr-defined]
    assert context.max_log_level == logging.WARNING


def test_every_logger_of_a_task_counts_towards_its_level(context: TaskContext) -> None:
    other = logging.getLogger("app.elsewhere")
    context.get_logger_context().info("default logger")
    context.get_logger_context(context={"k": 1}).warning("with context")
    context.get_logger_context(other).error("another logger")
    assert context.max_log_level == logging.ERROR
    assert context.get_logger_context(other).logger is other


def test_two_contexts_are_refused(context: TaskContext) -> None:
    with pytest.raises(TypeError, match="two contexts"):
        context.get_logger_context({"a": 1}, {"b": 2})
    with pytest.raises(TypeError, match="context must be a mapping, not list"):
        context.get_logger_context(None, ["a"])  # type: ignore[arg-type]


def test_an_exception_leaving_the_block_is_logged_with_its_context(
    context: TaskContext, caplog: pytest.LogCaptureFixture
) -> None:
    with (
        caplog.at_level(logging.INFO, logger="triggers.tasks.t_log"),
        pytest.raises(ValueError),
        context.get_logger_context({"app_version": "1.2"}),
    ):
        raise with_context(ValueError("bad input"), {"field": "name"})
    (record,) = caplog.records
    assert record.levelno == logging.ERROR
    assert record.getMessage() == "bad input"
    assert record.exc_info is not None and record.exc_info[0] is ValueError
    assert record.context == {"app_version": "1.2", "field": "name"}  # type: ignore[attr-defined]
    assert context.max_log_level == logging.ERROR


def test_a_task_ending_itself_is_not_an_error(context: TaskContext, caplog: pytest.LogCaptureFixture) -> None:
    with (
        caplog.at_level(logging.DEBUG, logger="triggers.tasks.t_log"),
        pytest.raises(StatusChange),
        context.get_logger_context(),
    ):
        raise StatusChange("skipped")
    assert caplog.records == []
    assert context.max_log_level == logging.NOTSET


def test_with_context_adds_to_what_an_exception_carries() -> None:
    error = with_context(with_context(KeyError("k"), {"a": 1, "b": 2}), {"b": 3})
    assert error.context == {"a": 1, "b": 3}  # type: ignore[attr-defined]
    odd = RuntimeError("x")
    odd.context = "not a mapping"  # type: ignore[attr-defined]
    assert with_context(odd, {"c": 1}).context == {"_original_context": "not a mapping", "c": 1}  # type: ignore[attr-defined]


def test_a_failed_instance_keeps_the_exception_context(memory_storage: MemoryStorageBackend) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({"t_spam": {"after": ["start"], "run": "core_sample_tasks.spam_check"}})
    manager.fire("start")
    instance = MemoryStorageBackend(memory_storage.uid, namespace=memory_storage.namespace)["t_spam#0"]
    assert instance.status is InstanceStatus.FAILED
    assert instance.metadata[TaskInstance.META_EXCEPTION_TYPE] == "builtins.ValueError"
    # A value outside the value domain (a set) is kept as its repr().
    assert instance.metadata[TaskInstance.META_EXCEPTION_CONTEXT] == {"score": 0.2, "seen": "{'x'}"}


def test_a_task_retrying_itself_keeps_the_context_of_its_error(memory_storage: MemoryStorageBackend) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({"t_api": {"after": ["start"], "run": "core_sample_tasks.RetryWithContext"}})
    manager.fire("start")
    stored = MemoryStorageBackend(memory_storage.uid, namespace=memory_storage.namespace)
    failed = stored["t_api#0"]
    assert failed.status is InstanceStatus.REPLAYED
    assert failed.metadata[TaskInstance.META_EXCEPTION_TYPE] == "builtins.TimeoutError"
    assert failed.metadata[TaskInstance.META_EXCEPTION_CONTEXT] == {"endpoint": "/v1"}
    assert stored["t_api#1"].metadata[TaskInstance.META_RESULT] == {"attempt": 1}
