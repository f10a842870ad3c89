"""Port of Triggers 2.0's tests/manager/skip_failed_test.py (MIT License, (c) 2017 EFL Global).

Only the plumbing changed (see ``compat/conftest.py``); every configuration,
fire and expectation is the original's.
"""

from __future__ import annotations

from compat_support import PortedTestCase

from triggers.manager import trigger_managers
from triggers.testing import FailingTask, PassThruTask


class TriggerManagerSkipFailedTestCase(PortedTestCase):
    """Skipping failed instances."""

    def setUp(self) -> None:
        self.manager = trigger_managers.get("default", storage=self.storage, runner=self.runner)

    def test_skip_failed_instance(self) -> None:
        """A skipped instance is resolved and does not cascade."""
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
        self.assertUnresolvedTasks(["t_alpha", "t_bravo"])
        # A failed instance is unresolved.
        self.assertUnresolvedInstances(["t_alpha#0"])

        self.manager.skip_failed_instance("t_alpha#0")
        self.assertInstanceSkipped("t_alpha#0")

        # No cascade.
        self.assertInstanceMissing("t_bravo#0")

        # t_alpha is resolved now; t_bravo, which never ran, is not.
        self.assertUnresolvedTasks(["t_bravo"])
        self.assertUnresolvedInstances([])

    def test_skip_failed_instance_with_cascade(self) -> None:
        """A skip may cascade, with a result given in its place."""
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
        self.assertUnresolvedTasks(["t_alpha", "t_bravo"])
        self.assertUnresolvedInstances(["t_alpha#0"])

        self.manager.skip_failed_instance(
            failed_instance="t_alpha#0",
            # Cascade as if the task had finished ...
            cascade=True,
            # ... with this result.
            result={
                "rating": "4.5",
                "popularity": "0.7",
            },
        )
        self.manager.join_all()

        # Skipped all the same.
        self.assertInstanceSkipped("t_alpha#0")

        # t_bravo ran with the given result.
        self.assertInstanceFinished("t_bravo#0", {
            "kwargs": {
                "t_alpha": {
                    "rating": "4.5",
                    "popularity": "0.7",
                },
            },
        })

        self.assertUnresolvedTasks([])
        self.assertUnresolvedInstances([])

    def test_cannot_skip_non_failed_instance(self) -> None:
        """Only a failed instance can be skipped."""
        self.manager.update_configuration({
            "t_alpha": {
                "after": ["dataReceived"],
                "run": PassThruTask.name,
            },
        })

        self.manager.fire("dataReceived")
        self.manager.join_all()

        with self.assertRaises(ValueError):
            self.manager.skip_failed_instance("t_alpha#0")
