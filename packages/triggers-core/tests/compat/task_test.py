"""Port of Triggers 2.0's tests/task_test.py (MIT License, (c) 2017 EFL Global).

Only the plumbing changed (see ``compat/conftest.py``): the manager is built
on the fixture's storage and runner, and ``unittest.mock.patch.object`` sets
``max_retries`` where the original used its own ``AttrPatcher``. Every
configuration, fire and expectation is the original's.
"""

from __future__ import annotations

from unittest import mock

from compat_support import PortedTestCase

from triggers.manager import TriggerManager
from triggers.task import MaxRetriesExceeded
from triggers.testing import SelfRetryingTask, SelfSkippingTask
from triggers.types import TaskInstance


class TriggerTaskTestCase(PortedTestCase):
    """What a task does to its own instance: skip it, or retry it."""

    def setUp(self) -> None:
        self.manager = TriggerManager(self.storage, runner=self.runner)

    def test_skip_self(self) -> None:
        """A task ends itself skipped."""
        self.manager.update_configuration({
            "t_skipper": {
                "after": ["integrity"],
                "run": SelfSkippingTask.name,
            },
        })

        self.manager.fire("integrity")
        self.manager.join_all()

        self.assertInstanceSkipped("t_skipper#0")

        # SelfSkippingTask records its kwargs in the metadata as it skips.
        task_instance: TaskInstance = self.manager.storage.instances["t_skipper#0"]
        self.assertEqual(task_instance.metadata["kwargs"], {"integrity": {}})

    def test_skip_self_with_metadata(self) -> None:
        """A task ends itself skipped, adding to its metadata."""
        self.manager.update_configuration({
            "t_skipper": {
                "after": ["integrity"],
                "run": SelfSkippingTask.name,
            },
        })

        kwargs = {"foo": "bar", "baz": "luhrmann"}

        self.manager.fire("integrity", kwargs)
        self.manager.join_all()

        self.assertInstanceSkipped("t_skipper#0")

        task_instance: TaskInstance = self.manager.storage.instances["t_skipper#0"]
        self.assertDictEqual(
            task_instance.metadata["kwargs"],
            {"integrity": kwargs},
        )

    def test_retry_self(self) -> None:
        """A task retries itself; each retry is a new instance."""
        with mock.patch.object(SelfRetryingTask, "max_retries", 2):
            self.manager.update_configuration({
                "t_replay": {
                    "after": ["start"],
                    "run": SelfRetryingTask.name,
                    "withParams": {"retries": {"max": 2}},
                },
            })

            self.manager.fire("start")
            self.manager.join_all()

        self.assertInstanceReplayed("t_replay#0")
        self.assertInstanceReplayed("t_replay#1")
        self.assertInstanceFinished("t_replay#2", {"count": 2})

    def test_retry_self_error_too_many_retries(self) -> None:
        """A task asks for more retries than max_retries allows."""
        with mock.patch.object(SelfRetryingTask, "max_retries", 2):
            self.manager.update_configuration({
                "t_replay": {
                    "after": ["start"],
                    "run": SelfRetryingTask.name,
                    "withParams": {"retries": {"max": 3}},
                },
            })

            self.manager.fire("start")
            self.manager.join_all()

        self.assertInstanceReplayed("t_replay#0")
        self.assertInstanceReplayed("t_replay#1")

        # Two replays (max_retries) were allowed; the third retry is refused.
        self.assertInstanceFailed("t_replay#2", MaxRetriesExceeded)
