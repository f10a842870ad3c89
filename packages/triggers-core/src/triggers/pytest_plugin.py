"""The ``triggers`` pytest plugin (entry point ``pytest11``): fixtures for testing tasks.

Installed with ``triggers-core``, so any test suite can ask for them:

``trigger_storage``
    A new session in the in-memory backend, in a namespace of its own that
    is emptied afterwards.
``trigger_runner``
    The runner tasks run on: the eager one (a fire returns when its tasks and
    their cascades are done).
``trigger_manager``
    ``TriggerManager(trigger_storage, runner=trigger_runner)``. After the test
    it waits for the runner's tasks (a minute at most) and fails the test if a
    task could not be started or its outcome not recorded (the runner's
    ``errors``), which would otherwise only be logged.

A ``conftest.py`` overrides ``trigger_storage`` (to test on the application's
own backend) or ``trigger_runner`` (``ThreadingTaskRunner()``, say) by
defining a fixture of the same name. For example::

    def test_import(trigger_manager):
        trigger_manager.update_configuration({"t_import": {"after": ["start"], "run": "app.tasks.import_subject"}})
        trigger_manager.fire("start", {"subjectId": 7})
        assert trigger_manager.storage["t_import#0"].status == "finished"

The assertions of :class:`triggers.testing.TriggerManagerTestCaseMixin` work in
a pytest class whose autouse fixture sets ``self.manager``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.runners import EagerTaskRunner, TaskRunner
from triggers.storage import TriggerStorageBackend

__all__ = ["trigger_manager", "trigger_runner", "trigger_storage"]

JOIN_TIMEOUT = 60.0
"""Seconds ``trigger_manager`` waits, after the test, for tasks still running."""


@pytest.fixture
def trigger_storage() -> Iterator[TriggerStorageBackend]:
    """A new, empty session in the in-memory backend."""
    namespace = f"pytest-{uuid.uuid4().hex}"
    storage = MemoryStorageBackend(f"session-{uuid.uuid4().hex}", namespace=namespace)
    yield storage
    storage.close()
    MemoryStorageBackend.clear(namespace)


@pytest.fixture
def trigger_runner() -> Iterator[TaskRunner]:
    """The eager runner: tasks run in the thread that fires, cascades included."""
    runner = EagerTaskRunner()
    yield runner
    runner.close()


@pytest.fixture
def trigger_manager(trigger_storage: TriggerStorageBackend, trigger_runner: TaskRunner) -> Iterator[TriggerManager]:
    """A trigger manager of ``trigger_storage`` whose tasks run on ``trigger_runner``."""
    manager = TriggerManager(trigger_storage, runner=trigger_runner)
    yield manager
    if not manager.join_all(timeout=JOIN_TIMEOUT):
        pytest.fail(f"tasks of session {trigger_storage.uid!r} still ran {JOIN_TIMEOUT:g} s after the test")
    if trigger_runner.errors:
        problems = "\n".join(f"  {type(error).__name__}: {error}" for error in trigger_runner.errors)
        pytest.fail(f"the runner of session {trigger_storage.uid!r} met errors:\n{problems}")
