"""What a task receives when it runs, and how a ``run`` path becomes code.

A task's ``run`` directive is a dotted path (``package.module.function`` or
``package.module:function``) to either

* a callable taking a :class:`TaskContext`, or
* a :class:`TriggerTask` subclass, whose ``_run(context)`` is called on a
  fresh instance.

The task returns ``None`` or a mapping. A mapping becomes the kwargs of the
trigger the finished task fires (its own name), so the next tasks receive it.
Raising marks the instance failed; raising :class:`~triggers.errors.RetryTask`
asks to be run again. A :class:`TriggerTask` may also end itself as Triggers
2.0 tasks did: ``raise self.skip(metadata)`` or ``raise self.retry(...)``.
"""

from __future__ import annotations

import importlib
import logging
import traceback
from collections.abc import Callable, Mapping, MutableMapping
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any

from triggers.errors import (
    ConfigurationError,
    InvalidTransitionError,
    MaxRetriesExceeded,
    Retry,
    RetryTask,
    StatusChange,
)
from triggers.exceptions import storable_context
from triggers.types import InstanceStatus, TaskInstance

if TYPE_CHECKING:
    from triggers.manager import TriggerManager

__all__ = [
    "TaskContext",
    "TaskFunction",
    "TaskLogger",
    "TaskRequest",
    "TriggerTask",
    "merge_params",
    "resolve_task",
]

TaskFunction = Callable[["TaskContext"], Mapping[str, Any] | None]


class TaskLogger(logging.LoggerAdapter[logging.Logger]):
    """A task's logger: remembers the highest level logged through it.

    It is also a context manager (``with context.get_logger_context() as
    logger:``), as in Triggers 2.0: an exception that leaves the block is
    logged (at ``ERROR``, with its traceback and the ``context`` that
    :func:`triggers.exceptions.with_context` attached to it) and goes on.
    The ones a task raises to end itself (``raise self.skip()``,
    ``raise self.retry()``, :class:`~triggers.errors.RetryTask`) are not
    errors and are not logged.

    The level is recorded whether or not the logger is enabled for it: the
    session must know a task warned even if nobody listens to the logs.
    """

    def __init__(self, logger: logging.Logger, extra: Mapping[str, object]) -> None:
        super().__init__(logger, extra)
        self.max_level = logging.NOTSET

    def log(self, level: int, msg: object, *args: Any, **kwargs: Any) -> None:
        self.max_level = max(self.max_level, level)
        super().log(level, msg, *args, **kwargs)

    def __enter__(self) -> TaskLogger:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if exc_type is None or exc is None or not isinstance(exc, Exception):
            return
        if isinstance(exc, StatusChange | RetryTask):
            return
        context = getattr(exc, "context", None)
        self.error(
            str(exc) or exc_type.__name__,
            exc_info=(exc_type, exc, traceback),
            extra={"context": dict(context) if isinstance(context, Mapping) else {}},
        )

    def process(self, msg: object, kwargs: MutableMapping[str, Any]) -> tuple[object, MutableMapping[str, Any]]:
        # Merged recursively, as in Triggers 2.0: a record's own ``context``
        # adds to (and overrides keys of) the one the logger was given.
        kwargs["extra"] = merge_params(self.extra or {}, kwargs.get("extra") or {})
        return msg, kwargs


def merge_params(params: Mapping[str, Any], kwargs: Mapping[str, Any]) -> dict[str, Any]:
    """``params`` with ``kwargs`` merged over them, recursively, as Triggers 2.0 did.

    Mappings present on both sides are merged key by key (``kwargs`` win);
    any other value (a list, a string) from ``kwargs`` replaces the one in
    ``params``. Neither argument is modified.
    """
    merged: dict[str, Any] = dict(params)
    for key, value in kwargs.items():
        below = merged.get(key)
        if isinstance(value, Mapping) and isinstance(below, Mapping):
            merged[key] = merge_params(below, value)
        else:
            merged[key] = value
    return merged


class TaskContext:
    """Everything a running task may use.

    ``trigger_kwargs``
        ``{trigger_name: kwargs}`` for every trigger the instance received,
        merged recursively over the task's ``withParams`` (fired kwargs win;
        see :func:`merge_params`). A ``withParams`` entry for a name that is
        not one of the task's triggers is passed as it is.
    ``manager``
        The trigger manager, to fire further triggers.
    ``task_instance``
        The instance being run.
    """

    def __init__(self, manager: TriggerManager, task_instance: TaskInstance) -> None:
        self.manager = manager
        self.task_instance = task_instance
        self.trigger_kwargs: dict[str, dict[str, Any]] = merge_params(
            task_instance.config.with_params, task_instance.kwargs
        )
        self.requested_status: InstanceStatus | None = None
        self._logger: TaskLogger | None = None
        self._other_loggers: list[TaskLogger] = []

    @property
    def session_uid(self) -> str:
        return self.manager.storage.uid

    @property
    def storage_uid(self) -> str:
        """Triggers 2.0's name for :attr:`session_uid`."""
        return self.session_uid

    @property
    def instance_name(self) -> str:
        """The running instance's name (``task#N``), where Triggers 2.0 tasks read it."""
        return self.task_instance.name

    def get_logger_context(
        self,
        logger: logging.Logger | Mapping[str, Any] | None = None,
        context: Mapping[str, Any] | None = None,
    ) -> TaskLogger:
        """A logger for this task; the highest level emitted is stored on the instance.

        Records carry ``triggers_session`` and ``triggers_instance``. Without
        arguments it is the task's own logger (``triggers.tasks.TASK``), the
        same object each time. As in Triggers 2.0, ``context`` (a mapping) is
        attached to every record as ``record.context``, and ``logger`` logs
        through another :class:`logging.Logger`; either gives a new adapter,
        whose levels count as well. A mapping given first is taken as
        ``context`` (``get_logger_context({"app_version": ...})``).
        """
        if isinstance(logger, Mapping):
            if context is not None:
                raise TypeError("get_logger_context() got two contexts; pass a Logger first, or one context")
            logger, context = None, logger
        extra: dict[str, object] = {
            "triggers_session": self.session_uid,
            "triggers_instance": self.task_instance.name,
        }
        if logger is None and context is None:
            if self._logger is None:
                self._logger = TaskLogger(self._default_logger(), extra)
            return self._logger
        if context is not None:
            if not isinstance(context, Mapping):
                raise TypeError(f"context must be a mapping, not {type(context).__name__}")
            extra["context"] = dict(context)
        adapter = TaskLogger(logger or self._default_logger(), extra)
        self._other_loggers.append(adapter)
        return adapter

    def _default_logger(self) -> logging.Logger:
        return logging.getLogger(f"triggers.tasks.{self.task_instance.config.name}")

    @property
    def max_log_level(self) -> int:
        """The highest level logged through any of this context's loggers (``NOTSET`` if none)."""
        loggers = [self._logger, *self._other_loggers] if self._logger is not None else self._other_loggers
        return max((adapter.max_level for adapter in loggers), default=logging.NOTSET)

    def set_status(self, status: InstanceStatus | str) -> None:
        """Choose the status the instance ends with instead of ``finished``.

        One of ``running`` (the task handed its work to another system, which
        later calls ``manager.update_instance_status``), ``finished``,
        ``failed`` or ``skipped``. Only a ``finished`` instance fires its
        trigger; to run again, raise :class:`~triggers.errors.RetryTask`.
        """
        requested = InstanceStatus(status)
        allowed = {InstanceStatus.RUNNING, InstanceStatus.FINISHED, InstanceStatus.FAILED, InstanceStatus.SKIPPED}
        if requested not in allowed:
            raise InvalidTransitionError(
                f"instance {self.task_instance.name!r}: a running task cannot end "
                f"{requested.value} (allowed: running, finished, failed, skipped; to run "
                "again, raise RetryTask)"
            )
        self.requested_status = requested


@dataclass(frozen=True)
class TaskRequest:
    """What Triggers 2.0 tasks read from Celery's ``self.request``.

    ``retries`` is the instance's ``depth``: how many replays came before it.
    """

    retries: int
    instance_name: str


class TriggerTask:
    """Base class for class-based tasks: implement :meth:`_run`.

    A fresh object runs each instance; while :meth:`_run` runs,
    :attr:`context` is that instance's :class:`TaskContext`.
    """

    max_retries: int = 3
    """How many times :meth:`retry` may replay an instance (Celery's default, as in Triggers 2.0)."""

    context: TaskContext

    def _run(self, context: TaskContext) -> Mapping[str, Any] | None:
        raise NotImplementedError(f"{type(self).__qualname__} must implement _run(context)")

    def __call__(self, context: TaskContext) -> Mapping[str, Any] | None:
        self.context = context
        return self._run(context)

    @property
    def request(self) -> TaskRequest:
        """The running instance's retry count, where Triggers 2.0 tasks looked for it."""
        instance = self.context.task_instance
        return TaskRequest(retries=instance.depth, instance_name=instance.name)

    @staticmethod
    def skip(metadata: Mapping[str, Any] | None = None) -> StatusChange:
        """An exception that, raised by the task, marks its instance skipped.

        ``raise self.skip({"skippedBecause": "..."})``: ``metadata`` is merged
        into the instance's metadata. Nothing cascades from a skipped instance.
        """
        return StatusChange(InstanceStatus.SKIPPED.value, metadata)

    def retry(
        self,
        exc: BaseException | None = None,
        metadata: Mapping[str, Any] | None = None,
        replacement_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        cooldown: float | None = None,
    ) -> Retry:
        """An exception that, raised by the task, replays its instance (see :class:`~triggers.errors.Retry`).

        ``exc`` (the error that made the task retry) is recorded in the failed
        instance's metadata like the error of a failed run (type, traceback,
        and the context :func:`~triggers.exceptions.with_context` attached). Raises
        :class:`~triggers.errors.MaxRetriesExceeded` instead once the instance
        has already been replayed :attr:`max_retries` times, so the instance
        fails for good.
        """
        recorded: dict[str, Any] = dict(metadata or {})
        if exc is not None:
            recorded[TaskInstance.META_EXCEPTION_TYPE] = f"{type(exc).__module__}.{type(exc).__qualname__}"
            recorded[TaskInstance.META_EXCEPTION_INFO] = "".join(traceback.format_exception(exc))
            exception_context = storable_context(exc, f"{self.request.instance_name} exception context")
            if exception_context is not None:
                recorded[TaskInstance.META_EXCEPTION_CONTEXT] = exception_context
        retries = self.request.retries
        if retries >= self.max_retries:
            raise MaxRetriesExceeded(
                f"{self.request.instance_name}: attempting retry #{retries + 1}, but "
                f"{type(self).__qualname__}.max_retries is {self.max_retries}"
            )
        return Retry(recorded, replacement_kwargs, cooldown)


def resolve_task(task_name: str, path: str) -> TaskFunction:
    """Import the object a ``run`` directive names and return it as a callable."""
    module_name, separator, attribute = path.partition(":")
    if not separator:
        module_name, _, attribute = path.rpartition(".")
    if not module_name or not attribute:
        raise ConfigurationError(
            f"task {task_name!r}: directive 'run' must be a dotted path like "
            f"'package.module.function', not {path!r}"
        )
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"task {task_name!r}: directive 'run' {path!r} cannot be imported: {exc}") from exc
    if isinstance(target, type) and issubclass(target, TriggerTask):
        task_class = target
        return lambda context: task_class()(context)
    if not callable(target):
        raise ConfigurationError(f"task {task_name!r}: directive 'run' {path!r} is not callable")
    function: TaskFunction = target
    return function
