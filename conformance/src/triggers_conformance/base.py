"""Fixtures shared by every part of the suite.

A backend author overrides exactly one fixture, ``make_storage``: it returns a
factory that builds a backend object for a uid, passing any extra keyword
options (``lease_ttl``, ``lock_timeout``, ``clock``) through to the backend's
constructor. The optional ``triggers_store`` fixture may set up and tear down
a store around each test.

Every test works in sessions with fresh random uids, so no test depends on an
empty store and stores need no cleaning between tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any, Protocol

import pytest

from triggers.capabilities import Capabilities
from triggers.manager import TriggerManager
from triggers.storage import TriggerStorageBackend
from triggers_conformance.guarantees import NOT_CLAIMED

__all__ = ["ConformanceBase", "StorageFactory"]


class StorageFactory(Protocol):
    """``make_storage(uid, **options) -> backend``."""

    def __call__(self, uid: str, **options: Any) -> TriggerStorageBackend: ...


TASKS = "triggers_conformance.tasks"


class ConformanceBase:
    """Fixtures and helpers; the tests live in the topic classes."""

    @pytest.fixture
    def make_storage(self) -> StorageFactory:
        """REQUIRED: override to return a factory ``(uid, **options) -> backend``."""
        pytest.fail(
            f"{type(self).__name__} must define a `make_storage` fixture returning "
            "a callable (uid, **options) -> storage backend"
        )

    @pytest.fixture(autouse=True)
    def triggers_store(self) -> Iterator[None]:
        """Optional: override to set up and tear down a store around each test."""
        yield

    @pytest.fixture
    def uid(self) -> str:
        return f"conformance-{uuid.uuid4().hex}"

    @pytest.fixture
    def storage(self, make_storage: StorageFactory, uid: str) -> Iterator[TriggerStorageBackend]:
        backend = make_storage(uid)
        yield backend
        backend.close()

    @pytest.fixture
    def capabilities(self, storage: TriggerStorageBackend) -> Capabilities:
        return storage.capabilities

    @pytest.fixture(autouse=True)
    def _triggers_requirements(self, request: pytest.FixtureRequest) -> None:
        marker = request.node.get_closest_marker("triggers_guarantee")
        requires = marker.kwargs.get("requires") if marker else None
        if requires is None:
            return
        capabilities: Capabilities = request.getfixturevalue("capabilities")
        claimed = getattr(capabilities, requires)
        if claimed in (False, None):
            pytest.skip(NOT_CLAIMED + requires)

    @pytest.fixture
    def reload(self, make_storage: StorageFactory) -> Iterator[Callable[[str], TriggerStorageBackend]]:
        """A fresh backend object for a uid: what another process would see."""
        opened: list[TriggerStorageBackend] = []

        def fresh(uid: str) -> TriggerStorageBackend:
            backend = make_storage(uid)
            opened.append(backend)
            return backend

        yield fresh
        for backend in opened:
            backend.close()

    @pytest.fixture
    def manager(self, storage: TriggerStorageBackend) -> TriggerManager:
        return TriggerManager(storage)

    @staticmethod
    def task(name: str, **directives: Any) -> dict[str, Any]:
        """A task configuration running ``triggers_conformance.tasks.<name>``."""
        return {"run": f"{TASKS}.{name}", **directives}

    @staticmethod
    def short_lease(capabilities: Capabilities) -> float:
        """The shortest lease worth testing with on this store."""
        return max(0.5, capabilities.min_lease_seconds)
