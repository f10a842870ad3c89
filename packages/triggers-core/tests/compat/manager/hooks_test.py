"""Port of Triggers 2.0's tests/manager/hooks_test.py (MIT License, (c) 2017 EFL Global).

Only the plumbing changed (see ``compat/conftest.py``): the custom manager is
registered for the test's duration in ``setUp``/``tearDown`` (the original
did it around ``TestCase.run``), with ``trigger_managers.register`` where the
original wrote into its registry's cache. Every configuration, fire and
expectation is the original's.
"""

from __future__ import annotations

from compat_support import PortedTestCase

from triggers.manager import TriggerManager, trigger_managers
from triggers.testing import DevNullTask, FailingTask
from triggers.types import TaskInstance


class TriggerManagerHooksTestCase(PortedTestCase):
    """When the manager calls its hooks, and with what."""

    def setUp(self) -> None:
        self.post_fire_calls: list[tuple[str, list[str]]] = []
        self.post_replay_calls: list[str] = []
        self.post_skip_calls: list[tuple[str, bool]] = []

        # The hooks below record into this test.
        test = self

        class PirateTriggerManager(TriggerManager):
            """A manager whose hooks record their calls."""

            def _post_fire(self, trigger_name: str, tasks_scheduled: list[TaskInstance]) -> None:
                # Instance names are easier to compare than instances.
                test.post_fire_calls.append(
                    (trigger_name, [instance.name for instance in tasks_scheduled])
                )

            def _post_replay(self, task_instance: TaskInstance) -> None:
                test.post_replay_calls.append(task_instance.name)

            def _post_skip(self, task_instance: TaskInstance, cascade: bool) -> None:
                test.post_skip_calls.append((task_instance.name, cascade))

        # Registered under the test's name while it runs.
        trigger_managers.register(self._testMethodName, PirateTriggerManager)
        self.manager = trigger_managers.get(self._testMethodName, storage=self.storage, runner=self.runner)

    def tearDown(self) -> None:
        trigger_managers.unregister(self._testMethodName)

    def test_hook_post_fire(self) -> None:
        """_post_fire is called for every trigger, cascades included."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["targetAcquired"],
                "run": DevNullTask.name,
            },
            "t_bravo": {
                "after": ["targetAcquired", "t_alpha"],
                "run": DevNullTask.name,
            },
        })

        # A trigger no task listens to.
        del self.post_fire_calls[:]
        self.manager.fire("foobar")

        self.assertListEqual(
            self.post_fire_calls,
            [
                ("foobar", []),
            ],
        )

        # A trigger that runs a task, which cascades.
        del self.post_fire_calls[:]
        self.manager.fire("targetAcquired")
        self.manager.join_all()

        self.assertListEqual(
            self.post_fire_calls,
            [
                ("targetAcquired", ["t_alpha#0"]),
                ("t_alpha", ["t_bravo#0"]),
                ("t_bravo", []),
            ],
        )

    def test_hook_post_fire_with_replay(self) -> None:
        """A replay fires no trigger, so _post_fire is not called."""
        self.manager.update_configuration({
            "t_failingTask": {
                "after": ["fail"],
                "run": FailingTask.name,
            },
        })

        del self.post_fire_calls[:]
        self.manager.fire("fail")
        self.manager.join_all()

        self.assertInstanceFailed("t_failingTask#0", RuntimeError)
        self.assertListEqual(
            self.post_fire_calls,
            [
                ("fail", ["t_failingTask#0"]),
            ],
        )

        del self.post_fire_calls[:]
        self.manager.replay_failed_instance("t_failingTask#0")
        self.manager.join_all()

        self.assertInstanceFailed("t_failingTask#1", RuntimeError)
        self.assertListEqual(self.post_fire_calls, [])

    def test_hook_post_fire_with_skip(self) -> None:
        """A skip calls _post_fire only if it cascades."""
        self.manager.update_configuration({
            "t_failingTask": {
                "after": [],
                "andEvery": "fail",
                "run": FailingTask.name,
            },
        })

        del self.post_fire_calls[:]
        self.manager.fire("fail")
        self.manager.join_all()

        self.assertInstanceFailed("t_failingTask#0", RuntimeError)
        self.assertListEqual(
            self.post_fire_calls,
            [
                ("fail", ["t_failingTask#0"]),
            ],
        )

        # No cascade: no trigger, no call.
        del self.post_fire_calls[:]
        self.manager.skip_failed_instance("t_failingTask#0", cascade=False)

        self.assertListEqual(self.post_fire_calls, [])

        # With a cascade, the task's own trigger fires.
        del self.post_fire_calls[:]
        self.manager.fire("fail")
        self.manager.join_all()

        self.assertInstanceFailed("t_failingTask#1", RuntimeError)

        self.manager.skip_failed_instance("t_failingTask#1", cascade=True)

        self.assertListEqual(
            self.post_fire_calls,
            [
                ("fail", ["t_failingTask#1"]),
                ("t_failingTask", []),
            ],
        )

    def test_hook_post_replay(self) -> None:
        """_post_replay is called with the failed instance, after a replay only."""
        self.manager.update_configuration({
            "t_failingTask": {
                "after": ["fail"],
                "run": FailingTask.name,
            },
        })

        del self.post_replay_calls[:]
        self.manager.fire("fail")
        self.manager.join_all()

        # Failed, not replayed yet.
        self.assertListEqual(self.post_replay_calls, [])

        del self.post_replay_calls[:]
        self.manager.replay_failed_instance("t_failingTask#0")
        self.manager.join_all()

        self.assertInstanceFailed("t_failingTask#1", RuntimeError)
        self.assertListEqual(self.post_replay_calls, ["t_failingTask#0"])

        # A skip, even one that cascades, is no replay.
        del self.post_replay_calls[:]
        self.manager.skip_failed_instance("t_failingTask#1", cascade=True)
        self.assertListEqual(self.post_replay_calls, [])

    def test_hook_post_skip(self) -> None:
        """_post_skip is called with the instance and whether it cascaded."""
        self.manager.update_configuration({
            "t_failingTask": {
                "after": [],
                "andEvery": "fail",
                "run": FailingTask.name,
            },
        })

        del self.post_skip_calls[:]
        self.manager.fire("fail")
        self.manager.join_all()

        self.assertInstanceFailed("t_failingTask#0", RuntimeError)
        # Failed, not skipped yet.
        self.assertListEqual(self.post_skip_calls, [])

        # A replay is no skip.
        del self.post_skip_calls[:]
        self.manager.replay_failed_instance("t_failingTask#0")
        self.manager.join_all()

        self.assertListEqual(self.post_skip_calls, [])

        self.assertInstanceFailed("t_failingTask#1", RuntimeError)

        self.manager.skip_failed_instance("t_failingTask#1", cascade=False)

        self.assertListEqual(
            self.post_skip_calls,
            [("t_failingTask#1", False)],
        )

        # And with a cascade.
        del self.post_skip_calls[:]
        self.manager.fire("fail")
        self.manager.join_all()

        self.assertInstanceFailed("t_failingTask#2", RuntimeError)

        self.manager.skip_failed_instance("t_failingTask#2", cascade=True)

        self.assertListEqual(
            self.post_skip_calls,
            [("t_failingTask#2", True)],
        )
