"""Helpers for testing an application's tasks and workflows (as Triggers 2.0 shipped them).

Three things, usable with unittest or pytest:

:class:`TriggerManagerTestCaseMixin`
    Assertions about a session's instances and tasks (``assertInstanceFinished``,
    ``assertInstanceFailed``, ``assertUnresolvedTasks``...), for any test class
    that sets ``self.manager``::

        class ImportSubjectTests(TriggerManagerTestCaseMixin, unittest.TestCase):
            def setUp(self):
                self.manager = TriggerManager(storage_backends.get("memory", self.id()))

    Each assertion reads the stored session (the manager's storage cache is
    dropped first), so it sees what the tasks saved, wherever they ran. A
    failure names the instance, the status expected and found, and shows the
    instance's metadata, with the traceback of a failed run.

Tasks for configurations under test
    :class:`PassThruTask` (returns its kwargs), :class:`DevNullTask` (returns
    ``{}``), :class:`FailingTask` (raises ``RuntimeError``),
    :class:`SelfSkippingTask` and :class:`SelfRetryingTask`. Each has a
    ``name``, the dotted path to put in a ``run`` directive::

        manager.update_configuration({"t_alpha": {"after": ["start"], "run": PassThruTask.name}})

pytest fixtures
    ``trigger_storage`` (a fresh in-memory session), ``trigger_runner`` (the
    eager runner) and ``trigger_manager`` (a manager of the two), from the
    ``triggers`` pytest plugin that ``triggers-core`` registers
    (:mod:`triggers.pytest_plugin`). Override ``trigger_storage`` or
    ``trigger_runner`` in a ``conftest.py`` to test on another backend or
    runner.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from pprint import pformat
from typing import Any, ClassVar, NoReturn, TypeVar

from triggers.errors import InstanceNotFoundError
from triggers.manager import TriggerManager
from triggers.tasks import TaskContext, TriggerTask
from triggers.types import InstanceStatus, TaskInstance

__all__ = [
    "DevNullTask",
    "FailingTask",
    "PassThruTask",
    "SelfRetryingTask",
    "SelfSkippingTask",
    "TriggerManagerTestCaseMixin",
    "name_matches_classpath",
]

_TaskClass = TypeVar("_TaskClass", bound=type[TriggerTask])


def name_matches_classpath(cls: _TaskClass) -> _TaskClass:
    """Class decorator: set ``cls.name`` to the class's dotted path (``module.Class``).

    The path is what a ``run`` directive takes, so a test configures the task
    with ``"run": MyTask.name``.
    """
    setattr(cls, "name", f"{cls.__module__}.{cls.__qualname__}")  # noqa: B010 - any TriggerTask class
    return cls


class _TestingTask(TriggerTask):
    name: ClassVar[str]
    """The dotted path of the class, for ``run`` directives (set by :func:`name_matches_classpath`)."""


@name_matches_classpath
class PassThruTask(_TestingTask):
    """Finishes with ``{"kwargs": context.trigger_kwargs}``, so a test sees what the task received."""

    def _run(self, context: TaskContext) -> Mapping[str, Any] | None:
        return {"kwargs": context.trigger_kwargs}


@name_matches_classpath
class DevNullTask(_TestingTask):
    """Finishes with an empty result."""

    def _run(self, context: TaskContext) -> Mapping[str, Any] | None:
        return {}


@name_matches_classpath
class FailingTask(_TestingTask):
    """Fails with a ``RuntimeError``."""

    def _run(self, context: TaskContext) -> Mapping[str, Any] | None:
        raise RuntimeError("You weren't supposed to see that.")


@name_matches_classpath
class SelfSkippingTask(_TestingTask):
    """Ends itself ``skipped``, recording its kwargs in the instance's metadata (``kwargs``)."""

    def _run(self, context: TaskContext) -> Mapping[str, Any] | None:
        raise self.skip({"kwargs": context.trigger_kwargs})


@name_matches_classpath
class SelfRetryingTask(_TestingTask):
    """Replays itself (``raise self.retry()``) until it has been retried enough times.

    How many is read from the kwargs ``{"retries": {"max": N}}`` (give them
    with ``withParams``), an int of at least 1, by default
    :attr:`~triggers.tasks.TriggerTask.max_retries`. It then finishes with
    ``{"count": N}``. Asking for more retries than ``max_retries`` allows
    makes the last instance fail with
    :class:`~triggers.errors.MaxRetriesExceeded`.
    """

    def _run(self, context: TaskContext) -> Mapping[str, Any] | None:
        wanted = (context.trigger_kwargs.get("retries") or {}).get("max", self.max_retries)
        if isinstance(wanted, bool) or not isinstance(wanted, int) or wanted < 1:
            raise ValueError(
                f"{context.instance_name}: kwargs retries.max must be an int of at least 1, "
                f"not {wanted!r}"
            )
        if self.request.retries < wanted:
            raise self.retry()
        return {"count": self.request.retries}


class TriggerManagerTestCaseMixin:
    """Assertions about the session of ``self.manager`` (set it in ``setUp`` or a fixture).

    Mix into a :class:`unittest.TestCase`, or into a plain pytest class.
    Failures raise the test case's ``failureException`` (:class:`AssertionError`).
    """

    manager: TriggerManager

    # ------------------------------------------------------------------
    # Instance status
    # ------------------------------------------------------------------

    def assertInstanceStatus(self, instance_name: str, expected_status: InstanceStatus | str) -> None:
        """Assert that the instance exists and has ``expected_status``."""
        expected = InstanceStatus(expected_status)
        instance = self._stored_instance(instance_name)
        if instance is None:
            self._fail(
                f'Expected "{instance_name}" instance to be {expected.value}, '
                "but it has not been created yet."
            )
        if instance.status is not expected:
            self._fail(
                f"{instance_name} has incorrect status (expected: {expected.value}, "
                f"actual: {instance.status.value}):\n\n{_describe(instance)}"
            )

    def assertInstanceAbandoned(self, instance_name: str) -> None:
        """Assert that the instance was abandoned (its ``unless`` triggers fired before it ran)."""
        self.assertInstanceStatus(instance_name, InstanceStatus.ABANDONED)

    def assertInstanceFailed(self, instance_name: str, exc_type: type[BaseException]) -> None:
        """Assert that the instance failed, and with an exception of type ``exc_type``.

        The type is matched by its dotted name (``module.QualName``), as the
        instance records it in ``metadata["exceptionType"]``; a subclass does
        not match its base class.
        """
        self.assertInstanceStatus(instance_name, InstanceStatus.FAILED)
        instance = self._stored_instance(instance_name)
        assert instance is not None  # checked just above
        expected = f"{exc_type.__module__}.{exc_type.__qualname__}"
        actual = instance.metadata.get(TaskInstance.META_EXCEPTION_TYPE)
        if actual != expected:
            self._fail(
                f"{instance_name} failed with {actual or 'no exception'}, not {expected}:"
                f"\n\n{_describe(instance)}"
            )

    def assertInstanceFinished(
        self, instance_name: str, expected_result: Mapping[str, Any] | None = None
    ) -> None:
        """Assert that the instance finished, and, if ``expected_result`` is given,
        that the task returned it (``{}`` for a task that returned nothing)."""
        self.assertInstanceStatus(instance_name, InstanceStatus.FINISHED)
        if expected_result is None:
            return
        instance = self._stored_instance(instance_name)
        assert instance is not None  # checked just above
        actual = instance.metadata.get(TaskInstance.META_RESULT)
        if actual != expected_result:
            self._fail(
                f"{instance_name} finished with another result (- expected, + actual):\n"
                + _diff(expected_result, actual)
            )

    def assertInstanceMissing(self, instance_name: str) -> None:
        """Assert that the instance has not been created (none of its task's triggers fired yet)."""
        instance = self._stored_instance(instance_name)
        if instance is not None:
            self._fail(
                f'Expected "{instance_name}" instance not to exist, but it was created '
                f'with status "{instance.status.value}".'
            )

    def assertInstanceReplayed(self, instance_name: str) -> None:
        """Assert that the instance failed and was replayed (a clone ran in its place)."""
        self.assertInstanceStatus(instance_name, InstanceStatus.REPLAYED)

    def assertInstanceRunning(self, instance_name: str) -> None:
        """Assert that the instance is running (or handed its work to another system)."""
        self.assertInstanceStatus(instance_name, InstanceStatus.RUNNING)

    def assertInstanceScheduled(self, instance_name: str) -> None:
        """Assert that the instance is scheduled: it holds its triggers but has not started."""
        self.assertInstanceStatus(instance_name, InstanceStatus.SCHEDULED)

    def assertInstanceSkipped(self, instance_name: str) -> None:
        """Assert that the instance was skipped (it failed and was skipped, or skipped itself)."""
        self.assertInstanceStatus(instance_name, InstanceStatus.SKIPPED)

    def assertInstanceUnstarted(self, instance_name: str) -> None:
        """Assert that the instance exists but has not started (it still waits for triggers)."""
        self.assertInstanceStatus(instance_name, InstanceStatus.UNSTARTED)

    # ------------------------------------------------------------------
    # The whole session
    # ------------------------------------------------------------------

    def assertUnresolvedTasks(self, task_names: Iterable[str]) -> None:
        """Assert which tasks are unresolved, in any order.

        A task is unresolved while it has an unresolved instance, or has no
        instance yet and may still get one.
        """
        storage = self.manager.storage
        storage.invalidate_cache()
        actual = sorted(task.name for task in storage.get_unresolved_tasks())
        self._assert_names("unresolved tasks", sorted(task_names), actual)

    def assertUnresolvedInstances(self, instance_names: Iterable[str]) -> None:
        """Assert which instances are unresolved (can still run or change), in any order.

        Only instances that exist count: a task none of whose triggers fired
        has none (see :meth:`assertUnresolvedTasks`).
        """
        storage = self.manager.storage
        storage.invalidate_cache()
        actual = sorted(instance.name for instance in storage.get_unresolved_instances())
        self._assert_names("unresolved instances", sorted(instance_names), actual)

    # ------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------

    def _stored_instance(self, instance_name: str) -> TaskInstance | None:
        """The instance as stored now (the storage's cache is dropped first), or None."""
        storage = self.manager.storage
        storage.invalidate_cache()
        try:
            return storage[instance_name]
        except InstanceNotFoundError:
            return None

    def _assert_names(self, what: str, expected: list[str], actual: list[str]) -> None:
        if actual != expected:
            missing = [name for name in expected if name not in actual]
            unexpected = [name for name in actual if name not in expected]
            self._fail(
                f"{what} of session {self.manager.storage.uid!r} are {actual}, expected {expected} "
                f"(missing: {missing}, unexpected: {unexpected})"
            )

    def _fail(self, message: str) -> NoReturn:
        failure: type[BaseException] = getattr(self, "failureException", AssertionError)
        raise failure(message)


def _describe(instance: TaskInstance) -> str:
    """An instance's kwargs and metadata, and the traceback of a failed run, for a failure message."""
    text = f"kwargs:\n{pformat(instance.kwargs)}\n\nmetadata:\n{pformat(instance.metadata)}"
    traceback = instance.metadata.get(TaskInstance.META_EXCEPTION_INFO)
    if isinstance(traceback, str) and traceback:
        text += f"\n\n{traceback}"
    return text


def _diff(expected: object, actual: object) -> str:
    lines = difflib.ndiff(pformat(expected).splitlines(), pformat(actual).splitlines())
    return "\n".join(lines)
