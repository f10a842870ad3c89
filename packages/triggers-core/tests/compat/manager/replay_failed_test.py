"""Port of Triggers 2.0's tests/manager/replay_failed_test.py (MIT License, (c) 2017 EFL Global).

Only the plumbing changed (see ``compat/conftest.py``); every configuration,
fire and expectation is the original's.
"""

from __future__ import annotations

from compat_support import PortedTestCase

from triggers.manager import trigger_managers
from triggers.testing import FailingTask, PassThruTask


class TriggerManagerReplayFailedTestCase(PortedTestCase):
    """Replaying failed instances."""

    def setUp(self) -> None:
        self.manager = trigger_managers.get("default", storage=self.storage, runner=self.runner)

    def test_replay_failed_instance(self) -> None:
        """A failed instance is replayed once its problem is fixed."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": FailingTask.name,
            },
            "t_bravo": {
                "after": ["t_alpha"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        self.assertInstanceFailed("t_alpha#0", RuntimeError)
        self.assertInstanceMissing("t_bravo#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo"])
        # A failed instance is unresolved.
        self.assertUnresolvedInstances(["t_alpha#0"])

        # The fix: the task will succeed when replayed.
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": PassThruTask.name,
            },
        })

        self.manager.replay_failed_instance("t_alpha#0")
        self.manager.join_all()

        # The failed instance is kept, marked replayed ...
        self.assertInstanceReplayed("t_alpha#0")

        # ... and its replay is a new instance.
        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {},
            },
        })

        # Which cascades as any finished instance does.
        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {},
                    },
                },
            },
        })

        self.assertUnresolvedTasks([])
        # A replayed instance is resolved.
        self.assertUnresolvedInstances([])

    def test_replay_failed_task_with_different_kwargs(self) -> None:
        """A replay with replacement kwargs."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": FailingTask.name,
            },
            "t_bravo": {
                "after": ["t_alpha"],
                "run": PassThruTask.name,
            },
        })

        # These kwargs are replaced below.
        self.manager.fire("dataReceived", {"random": "filbert"})
        self.manager.join_all()

        self.assertInstanceFailed("t_alpha#0", RuntimeError)
        self.assertInstanceMissing("t_bravo#0")
        self.assertUnresolvedTasks(["t_alpha", "t_bravo"])
        self.assertUnresolvedInstances(["t_alpha#0"])

        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": PassThruTask.name,
            },
        })

        # The replacement names the kwargs of each trigger.
        self.manager.replay_failed_instance(
            failed_instance="t_alpha#0",
            replacement_kwargs={
                "dataReceived": {"name": "Princess Luna"},
                # Other entries are passed along too.
                "extra": {"unused": True},
            },
        )
        self.manager.join_all()

        self.assertInstanceReplayed("t_alpha#0")

        # The replacement replaced the kwargs entirely: "random" is gone.
        self.assertInstanceFinished("t_alpha#1", {
            "kwargs": {
                "dataReceived": {"name": "Princess Luna"},
                "extra": {"unused": True},
            },
        })

        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "kwargs": {
                        "dataReceived": {"name": "Princess Luna"},
                        "extra": {"unused": True},
                    },
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_cannot_replay_non_failed_instance(self) -> None:
        """Only a failed instance can be replayed."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        with self.assertRaises(ValueError):
            self.manager.replay_failed_instance("t_alpha#0")
