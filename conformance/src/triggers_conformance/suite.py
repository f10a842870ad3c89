"""The one class a backend author subclasses.

::

    from triggers_conformance import BackendConformance

    class TestMyBackend(BackendConformance):
        @pytest.fixture
        def make_storage(self):
            return lambda uid, **options: MyBackend(uid, dsn=DSN, **options)

Every standard test then runs against the backend as an ordinary pytest item
(``-k``, ``-x``, xdist and per-test xfail all work). To mark a standard test
as an expected failure, name it in ``xfail_tests`` with a reason; overriding
or deleting a standard test is refused when the class is defined, so a
backend can never silently skip a guarantee.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from triggers_conformance.base import ConformanceBase
from triggers_conformance.concurrency import ConcurrencyTests
from triggers_conformance.configuration import ConfigurationTests
from triggers_conformance.damaged_data import DamagedDataTests
from triggers_conformance.efficiency import EfficiencyTests
from triggers_conformance.isolation import IsolationTests
from triggers_conformance.limits import LimitTests
from triggers_conformance.locking import LockingTests
from triggers_conformance.manager_semantics import ManagerSemanticsTests
from triggers_conformance.optimistic import OptimisticTests
from triggers_conformance.options import BadOptionTests
from triggers_conformance.session_api import SessionApiTests
from triggers_conformance.value_domain import ValueDomainTests

__all__ = ["BackendConformance", "standard_test_names"]

_TOPICS = (
    SessionApiTests,
    ValueDomainTests,
    ConfigurationTests,
    BadOptionTests,
    ManagerSemanticsTests,
    IsolationTests,
    LockingTests,
    ConcurrencyTests,
    OptimisticTests,
    EfficiencyTests,
    LimitTests,
    DamagedDataTests,
)


OVERRIDABLE = frozenset({"make_storage", "triggers_store", "raw_store", "bad_options", "xfail_tests"})
"""What a subclass may define; everything else the suite defines is fixed."""


def _suite_attribute_names() -> frozenset[str]:
    return frozenset(
        name
        for topic in (*_TOPICS, ConformanceBase)
        for name in vars(topic)
        if not (name.startswith("__") and name.endswith("__"))
    ) - OVERRIDABLE


def _defined_by_suite(cls: type, name: str) -> bool:
    """True if ``name`` resolves, on ``cls``, to the suite's own definition.

    Compared by where the name is defined rather than by identity: pytest
    fixtures are descriptors that return a new object on each access.
    """
    for klass in cls.__mro__:
        if name in vars(klass):
            return klass in _SUITE_CLASSES
    return False


def standard_test_names() -> frozenset[str]:
    """Names of every standard test of the suite."""
    return frozenset(
        name for topic in _TOPICS for name in vars(topic) if name.startswith("test_")
    )


class BackendConformance(*_TOPICS):  # type: ignore[misc]
    """Every conformance test of the suite; subclass it and define ``make_storage``."""

    xfail_tests: ClassVar[Mapping[str, str]] = {}
    """``{standard test name: reason}`` for tests expected to fail on this backend."""

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        standard = standard_test_names()
        for name in sorted(standard):
            if not _defined_by_suite(cls, name):
                raise TypeError(
                    f"{cls.__qualname__} overrides or deletes the standard conformance test "
                    f"{name!r}; list it in `xfail_tests = {{{name!r}: 'reason'}}` instead"
                )
        for name in sorted(_suite_attribute_names() - standard):
            if not _defined_by_suite(cls, name):
                raise TypeError(
                    f"{cls.__qualname__} overrides {name!r}, a fixture or helper of the "
                    f"conformance suite; only {sorted(OVERRIDABLE)} may be defined"
                )
        unknown = set(cls.xfail_tests) - standard
        if unknown:
            raise TypeError(f"{cls.__qualname__}.xfail_tests names unknown tests: {sorted(unknown)}")
        for name, reason in cls.xfail_tests.items():
            if not isinstance(reason, str) or not reason.strip():
                raise TypeError(f"{cls.__qualname__}.xfail_tests[{name!r}] needs a reason")


_SUITE_CLASSES = frozenset({*_TOPICS, ConformanceBase, BackendConformance, object})
