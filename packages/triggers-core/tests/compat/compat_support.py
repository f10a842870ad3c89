"""The base class of the ported Triggers 2.0 tests: unittest's API on pytest classes.

The original tests were ``unittest.TestCase`` classes; pytest cannot
parametrize those by backend, so the port runs them as plain pytest classes.
This base gives them what they used from ``TestCase``: ``setUp`` and
``tearDown`` (run by an autouse fixture, with the plugin's storage and runner
at hand as ``self.storage`` and ``self.runner``),
``_testMethodName``, and the ``assert*`` methods, which are unittest's own
(borrowed from a bare ``TestCase`` instance) so that failures read the same.
"""

from __future__ import annotations

import unittest
from collections.abc import Iterator

import pytest

from triggers.manager import TriggerManager
from triggers.runners import TaskRunner
from triggers.storage import TriggerStorageBackend
from triggers.testing import TriggerManagerTestCaseMixin

_CASE = unittest.TestCase()
_CASE.maxDiff = None


class PortedTestCase(TriggerManagerTestCaseMixin):
    """A pytest class standing in for ``TriggerManagerTestCaseMixin, TestCase``."""

    __test__ = True  # collected whatever the subclass is called (Triggers 2.0's class names)

    manager: TriggerManager
    storage: TriggerStorageBackend
    runner: TaskRunner
    _testMethodName: str

    assertEqual = staticmethod(_CASE.assertEqual)
    assertNotEqual = staticmethod(_CASE.assertNotEqual)
    assertListEqual = staticmethod(_CASE.assertListEqual)
    assertDictEqual = staticmethod(_CASE.assertDictEqual)
    assertRaises = staticmethod(_CASE.assertRaises)
    failureException = AssertionError

    @pytest.fixture(autouse=True)
    def _set_up(
        self,
        request: pytest.FixtureRequest,
        trigger_storage: TriggerStorageBackend,
        trigger_runner: TaskRunner,
    ) -> Iterator[None]:
        self._testMethodName = request.node.originalname
        self.storage = trigger_storage
        self.runner = trigger_runner
        self.setUp()
        try:
            yield
            assert self.manager.join_all(timeout=60), "tasks still running a minute after the test"
            assert self.runner.errors == [], f"the runner met errors: {self.runner.errors}"
        finally:
            self.tearDown()

    def setUp(self) -> None:
        """Build ``self.manager`` (the original built it on its cache backend)."""
        self.manager = TriggerManager(self.storage, runner=self.runner)

    def tearDown(self) -> None:
        """Undo what ``setUp`` did outside the session (nothing by default)."""
