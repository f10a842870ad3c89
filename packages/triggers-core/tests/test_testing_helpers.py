"""triggers.testing and the ``triggers`` pytest plugin: what application tests get (issue 16)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
import unittest
from pathlib import Path

import pytest

from triggers.errors import MaxRetriesExceeded
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.runners import EagerTaskRunner
from triggers.testing import (
    DevNullTask,
    FailingTask,
    PassThruTask,
    SelfRetryingTask,
    SelfSkippingTask,
    TriggerManagerTestCaseMixin,
    name_matches_classpath,
)
from triggers.types import InstanceStatus


class Checks(TriggerManagerTestCaseMixin):
    """The mixin on its own, as in a pytest class."""

    def __init__(self, manager: TriggerManager) -> None:
        self.manager = manager


@pytest.fixture
def checks(memory_storage: MemoryStorageBackend) -> Checks:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({
        "t_pass": {"after": ["start"], "run": PassThruTask.name},
        "t_null": {"after": ["t_pass"], "run": DevNullTask.name},
        "t_fail": {"after": ["start"], "run": FailingTask.name},
        "t_wait": {"after": ["start", "later"], "run": DevNullTask.name},
        "t_never": {"after": ["never"], "run": DevNullTask.name},
    })
    manager.fire("start", {"n": 1})
    return Checks(manager)


def test_task_names_are_their_dotted_paths() -> None:
    assert PassThruTask.name == "triggers.testing.PassThruTask"
    assert SelfRetryingTask.name == "triggers.testing.SelfRetryingTask"

    @name_matches_classpath
    class Local(DevNullTask):
        pass

    assert Local.name == f"{__name__}.test_task_names_are_their_dotted_paths.<locals>.Local"


def test_assertions_pass_on_the_stored_session(checks: Checks) -> None:
    checks.assertInstanceFinished("t_pass#0", {"kwargs": {"start": {"n": 1}}})
    checks.assertInstanceFinished("t_null#0", {})
    checks.assertInstanceFinished("t_null#0")
    checks.assertInstanceFailed("t_fail#0", RuntimeError)
    checks.assertInstanceUnstarted("t_wait#0")
    checks.assertInstanceMissing("t_never#0")
    checks.assertInstanceStatus("t_fail#0", "failed")
    checks.assertUnresolvedTasks(["t_wait", "t_never", "t_fail"])  # any order
    checks.assertUnresolvedInstances(["t_wait#0", "t_fail#0"])


def test_a_wrong_status_names_both_and_shows_the_traceback(checks: Checks) -> None:
    with pytest.raises(AssertionError) as failure:
        checks.assertInstanceFinished("t_fail#0")
    message = str(failure.value)
    assert "t_fail#0 has incorrect status (expected: finished, actual: failed)" in message
    assert "RuntimeError: You weren't supposed to see that." in message
    assert "Traceback" in message


def test_a_missing_instance_fails_status_assertions(checks: Checks) -> None:
    with pytest.raises(AssertionError, match='"t_never#0" instance to be skipped, but it has not been created'):
        checks.assertInstanceSkipped("t_never#0")
    with pytest.raises(AssertionError, match='"t_pass#0" instance not to exist, but it was created with status "finished"'):
        checks.assertInstanceMissing("t_pass#0")


def test_another_result_fails_with_a_diff(checks: Checks) -> None:
    with pytest.raises(AssertionError) as failure:
        checks.assertInstanceFinished("t_pass#0", {"kwargs": {"start": {"n": 2}}})
    assert "t_pass#0 finished with another result" in str(failure.value)
    assert "- {'kwargs': {'start': {'n': 2}}}" in str(failure.value)
    assert "+ {'kwargs': {'start': {'n': 1}}}" in str(failure.value)


def test_another_exception_type_fails(checks: Checks) -> None:
    with pytest.raises(AssertionError, match=r"t_fail#0 failed with builtins\.RuntimeError, not builtins\.ValueError"):
        checks.assertInstanceFailed("t_fail#0", ValueError)


def test_unresolved_lists_name_what_is_missing_and_unexpected(checks: Checks) -> None:
    with pytest.raises(AssertionError, match=r"missing: \['t_gone'\], unexpected: \['t_never'\]"):
        checks.assertUnresolvedTasks(["t_fail", "t_gone", "t_wait"])
    with pytest.raises(AssertionError, match=r"missing: \[\], unexpected: \['t_fail#0'\]"):
        checks.assertUnresolvedInstances(["t_wait#0"])


def test_assertions_read_what_another_object_saved(checks: Checks, memory_storage: MemoryStorageBackend) -> None:
    # Loaded (and cached) now ...
    checks.assertInstanceUnstarted("t_wait#0")
    # ... then the session moves on through another storage object.
    other = TriggerManager(MemoryStorageBackend(memory_storage.uid, namespace=memory_storage.namespace))
    other.fire("later")
    checks.assertInstanceFinished("t_wait#0", {})
    checks.assertUnresolvedInstances(["t_fail#0"])


def test_the_mixin_works_in_a_unittest_test_case(memory_storage: MemoryStorageBackend) -> None:
    class Case(TriggerManagerTestCaseMixin, unittest.TestCase):
        failureException = type("CustomFailure", (AssertionError,), {})

        def setUp(self) -> None:
            self.manager = TriggerManager(memory_storage)
            self.manager.update_configuration({"t_skip": {"after": ["go"], "run": SelfSkippingTask.name}})

        def test_passes(self) -> None:
            self.manager.fire("go", {"why": "test"})
            self.assertInstanceSkipped("t_skip#0")
            self.assertEqual(self.manager.storage["t_skip#0"].metadata["kwargs"], {"go": {"why": "test"}})

        def test_fails(self) -> None:
            self.assertInstanceFinished("t_skip#0")

    result = unittest.TestResult()
    unittest.defaultTestLoader.loadTestsFromTestCase(Case).run(result)
    assert result.testsRun == 2
    assert result.errors == []
    assert [test.id().rpartition(".")[2] for test, _ in result.failures] == ["test_fails"]
    assert "CustomFailure" in result.failures[0][1]


def test_self_retrying_task_replays_until_its_count(memory_storage: MemoryStorageBackend) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({
        "t_retry": {"after": ["go"], "run": SelfRetryingTask.name, "withParams": {"retries": {"max": 2}}},
        "t_default": {"after": ["go"], "run": SelfRetryingTask.name},
    })
    manager.fire("go")
    checks = Checks(manager)
    checks.assertInstanceReplayed("t_retry#0")
    checks.assertInstanceReplayed("t_retry#1")
    checks.assertInstanceFinished("t_retry#2", {"count": 2})
    # Without kwargs it retries max_retries (3) times.
    checks.assertInstanceFinished("t_default#3", {"count": 3})
    assert memory_storage["t_retry#2"].depth == 2


def test_self_retrying_task_refuses_more_than_max_retries(memory_storage: MemoryStorageBackend) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({
        "t_retry": {"after": ["go"], "run": SelfRetryingTask.name, "withParams": {"retries": {"max": 4}}},
    })
    manager.fire("go")
    Checks(manager).assertInstanceFailed("t_retry#3", MaxRetriesExceeded)


@pytest.mark.parametrize("bad", [0, "2", True, None])
def test_self_retrying_task_refuses_a_bad_count(memory_storage: MemoryStorageBackend, bad: object) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({
        "t_retry": {"after": ["go"], "run": SelfRetryingTask.name, "withParams": {"retries": {"max": bad}}},
    })
    manager.fire("go")
    Checks(manager).assertInstanceFailed("t_retry#0", ValueError)
    assert "retries.max must be an int of at least 1" in memory_storage["t_retry#0"].metadata["error"]["message"]


def test_the_plugin_fixtures(trigger_manager: TriggerManager) -> None:
    assert isinstance(trigger_manager.storage, MemoryStorageBackend)
    assert isinstance(trigger_manager.runner, EagerTaskRunner)
    assert len(trigger_manager.storage) == 0
    trigger_manager.update_configuration({"t_pass": {"after": ["go"], "run": PassThruTask.name}})
    trigger_manager.fire("go")
    assert trigger_manager.storage["t_pass#0"].status is InstanceStatus.FINISHED


def test_the_plugin_is_registered_and_its_fixtures_can_be_overridden(tmp_path: Path) -> None:
    """Run in a pytest of its own: the entry point, an override, and a failing teardown."""
    (tmp_path / "conftest.py").write_text(textwrap.dedent("""
        import pytest
        from triggers.runners import TaskRunner, ThreadingTaskRunner

        class BrokenRunner(TaskRunner):
            def run(self, manager, instance_name):
                raise RuntimeError("no worker for " + instance_name)

        @pytest.fixture
        def trigger_runner(request):
            runner = BrokenRunner() if "broken" in request.node.name else ThreadingTaskRunner()
            yield runner
            runner.close()
    """))
    (tmp_path / "test_app.py").write_text(textwrap.dedent("""
        from triggers.runners import ThreadingTaskRunner
        from triggers.testing import PassThruTask

        CONFIG = {"t_pass": {"after": ["go"], "run": PassThruTask.name}}

        def test_threads(trigger_manager):
            assert isinstance(trigger_manager.runner, ThreadingTaskRunner)
            trigger_manager.update_configuration(CONFIG)
            trigger_manager.fire("go")
            assert trigger_manager.join_all(timeout=30)
            assert trigger_manager.storage["t_pass#0"].status == "finished"

        def test_broken(trigger_manager):
            trigger_manager.update_configuration(CONFIG)
            trigger_manager.fire("go")
    """))
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(tmp_path)],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=False,
    )
    # test_broken passes, then its teardown fails: 2 passed, 1 error.
    assert "2 passed, 1 error" in result.stdout, result.stdout + result.stderr
    assert "ERROR test_app.py::test_broken" in result.stdout
    assert "met errors:" in result.stdout
    assert "RuntimeError: no worker for t_pass#0" in result.stdout
