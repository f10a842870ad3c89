"""What a task receives when it runs, and how a ``run`` path becomes code.

A task's ``run`` directive is a dotted path (``package.module.function`` or
``package.module:function``) to either

* a callable taking a :class:`TaskContext`, or
* a :class:`TriggerTask` subclass, whose ``_run(context)`` is called on a
  fresh instance.

The task returns ``None`` or a mapping. A mapping becomes the kwargs of the
trigger the finished task fires (its own name), so the next tasks receive it.
Raising marks the instance failed; raising :class:`~triggers.errors.RetryTask`
asks to be run again.
"""

from __future__ import annotations

import importlib
import logging
from collections.abc import Callable, Mapping, MutableMapping
from typing import TYPE_CHECKING, Any

from triggers.errors import ConfigurationError, InvalidTransitionError
from triggers.types import InstanceStatus, TaskInstance

if TYPE_CHECKING:
    from triggers.manager import TriggerManager

__all__ = ["TaskContext", "TaskFunction", "TaskLogger", "TriggerTask", "resolve_task"]

TaskFunction = Callable[["TaskContext"], Mapping[str, Any] | None]


class TaskLogger(logging.LoggerAdapter[logging.Logger]):
    """A task's logger: remembers the highest level logged through it.

    It is also a context manager (``with context.get_logger_context() as
    logger:``), as in Triggers 2.0; leaving the block changes nothing, the
    level is recorded as each record is logged.

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

    def __exit__(self, *exc_info: object) -> None:
        return None

    def process(self, msg: object, kwargs: MutableMapping[str, Any]) -> tuple[object, MutableMapping[str, Any]]:
        kwargs["extra"] = {**(self.extra or {}), **kwargs.get("extra", {})}
        return msg, kwargs


class TaskContext:
    """Everything a running task may use.

    ``trigger_kwargs``
        ``{trigger_name: kwargs}`` for every trigger the instance received,
        with the task's ``withParams`` merged underneath (fired kwargs win).
    ``manager``
        The trigger manager, to fire further triggers.
    ``task_instance``
        The instance being run.
    """

    def __init__(self, manager: TriggerManager, task_instance: TaskInstance) -> None:
        self.manager = manager
        self.task_instance = task_instance
        params = task_instance.config.with_params
        self.trigger_kwargs: dict[str, dict[str, Any]] = {
            trigger: {**params.get(trigger, {}), **kwargs}
            for trigger, kwargs in task_instance.kwargs.items()
        }
        self.requested_status: InstanceStatus | None = None
        self._logger: TaskLogger | None = None

    @property
    def session_uid(self) -> str:
        return self.manager.storage.uid

    def get_logger_context(self) -> TaskLogger:
        """A logger for this task; the highest level emitted is stored on the instance."""
        if self._logger is None:
            logger = logging.getLogger(f"triggers.tasks.{self.task_instance.config.name}")
            self._logger = TaskLogger(
                logger,
                {"triggers_session": self.session_uid, "triggers_instance": self.task_instance.name},
            )
        return self._logger

    @property
    def max_log_level(self) -> int:
        return self._logger.max_level if self._logger is not None else logging.NOTSET

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


class TriggerTask:
    """Base class for class-based tasks: implement :meth:`_run`."""

    def _run(self, context: TaskContext) -> Mapping[str, Any] | None:
        raise NotImplementedError(f"{type(self).__qualname__} must implement _run(context)")

    def __call__(self, context: TaskContext) -> Mapping[str, Any] | None:
        return self._run(context)


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
        return lambda context: task_class()._run(context)
    if not callable(target):
        raise ConfigurationError(f"task {task_name!r}: directive 'run' {path!r} is not callable")
    function: TaskFunction = target
    return function
