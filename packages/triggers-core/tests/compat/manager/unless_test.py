"""Port of Triggers 2.0's tests/manager/unless_test.py (MIT License, (c) 2017 EFL Global).

Only the plumbing changed (see ``compat/conftest.py``); every configuration,
fire and expectation is the original's.
"""

from __future__ import annotations

from compat_support import PortedTestCase

from triggers.manager import trigger_managers
from triggers.testing import DevNullTask


class TriggerManagerUnlessTestCase(PortedTestCase):
    """Tasks abandoned once their ``unless`` triggers fired."""

    def setUp(self) -> None:
        self.manager = trigger_managers.get("default", storage=self.storage, runner=self.runner)

    def test_abandoned_task(self) -> None:
        """The unless trigger fires first: the task never runs."""
        self.manager.update_configuration({
            "t_alpha": {
                "run": DevNullTask.name,
                "after": ["__sessionFinalized"],
                "unless": ["__finalizedWithoutSteps"],
            },
        })

        self.manager.fire("__finalizedWithoutSteps")
        self.manager.join_all()
        self.assertInstanceAbandoned("t_alpha#0")

        # Abandoned counts as resolved.
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

        self.manager.fire("__sessionFinalized")
        self.manager.join_all()
        self.assertInstanceAbandoned("t_alpha#0")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_abandoned_task_complex(self) -> None:
        """Several unless triggers: the task is abandoned once all of them fired."""
        self.manager.update_configuration({
            "t_alpha": {
                "run": DevNullTask.name,
                "after": ["dataReceived", "__sessionFinalized"],
                "unless": ["e_bureauCheck", "__finalizedWithoutSteps"],
            },
        })

        self.manager.fire("__finalizedWithoutSteps")
        self.manager.join_all()
        # One of two: not abandoned yet.
        self.assertInstanceUnstarted("t_alpha#0")
        self.assertUnresolvedTasks(["t_alpha"])
        self.assertUnresolvedInstances(["t_alpha#0"])

        self.manager.fire("__sessionFinalized")
        self.manager.join_all()
        self.assertInstanceUnstarted("t_alpha#0")
        self.assertUnresolvedTasks(["t_alpha"])
        self.assertUnresolvedInstances(["t_alpha#0"])

        self.manager.fire("e_bureauCheck")
        self.manager.join_all()
        # Both fired: abandoned.
        self.assertInstanceAbandoned("t_alpha#0")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

        self.manager.fire("dataReceived")
        self.manager.join_all()
        self.assertInstanceAbandoned("t_alpha#0")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_abandoned_task_with_and_every(self) -> None:
        """unless abandons every waiting instance of an andEvery task."""
        self.manager.update_configuration({
            "t_alpha": {
                "run": DevNullTask.name,
                "after": ["creditsDepleted"],
                "andEvery": "_finishStep",
                "unless": ["__deviceDisabled"],
            },
        })

        self.manager.fire("_finishStep")
        self.manager.fire("_finishStep")
        self.manager.fire("_finishStep")
        self.manager.fire("__deviceDisabled")
        self.manager.fire("creditsDepleted")
        self.manager.join_all()

        # None of them had started when __deviceDisabled fired.
        self.assertInstanceAbandoned("t_alpha#0")
        self.assertInstanceAbandoned("t_alpha#1")
        self.assertInstanceAbandoned("t_alpha#2")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_abandoned_task_after_starting(self) -> None:
        """An instance that started before the unless trigger fired is not abandoned."""
        self.manager.update_configuration({
            "t_alpha": {
                "run": DevNullTask.name,
                "after": ["creditsDepleted"],
                "andEvery": "_finishStep",
                "unless": ["__deviceDisabled"],
            },
        })

        self.manager.fire("creditsDepleted")
        self.manager.fire("_finishStep")

        # The unless condition is met from here on.
        self.manager.fire("__deviceDisabled")

        # A new instance, made after that.
        self.manager.fire("_finishStep")

        self.manager.join_all()

        # Started before __deviceDisabled: it ran.
        self.assertInstanceFinished("t_alpha#0", {})

        # Made afterwards: abandoned as soon as it was made.
        self.assertInstanceAbandoned("t_alpha#1")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_abandoned_clone(self) -> None:
        """A clone of an instance keeps the unless triggers it heard so far."""
        self.manager.update_configuration({
            "t_alpha": {
                "run": DevNullTask.name,
                "after": ["dataReceived"],
                "unless": ["e_bureauCheck", "__finalizedWithoutSteps"],
            },
        })

        self.manager.fire("__finalizedWithoutSteps")
        self.manager.join_all()
        # One of two unless triggers: not abandoned.
        self.assertInstanceUnstarted("t_alpha#0")
        self.assertUnresolvedTasks(["t_alpha"])
        self.assertUnresolvedInstances(["t_alpha#0"])

        # The storage-level way to copy an instance (a replay uses it).
        # 2.0's acquire_lock() yielded the storage; here it yields the lease.
        with self.manager.storage.acquire_lock():
            writable_storage = self.manager.storage
            writable_storage.clone_instance(writable_storage["t_alpha#0"])
            writable_storage.save()

        self.assertInstanceUnstarted("t_alpha#1")
        self.assertUnresolvedTasks(["t_alpha"])
        self.assertUnresolvedInstances(["t_alpha#0", "t_alpha#1"])

        self.manager.fire("e_bureauCheck")
        self.manager.join_all()

        # The clone is abandoned with its original.
        self.assertInstanceAbandoned("t_alpha#0")
        self.assertInstanceAbandoned("t_alpha#1")
        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])
