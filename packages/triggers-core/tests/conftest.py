"""Fixtures of the triggers-core unit tests.

pytest runs with ``--import-mode=importlib``, which does not put this
directory on ``sys.path``; the helper modules (``core_sample_tasks``,
``core_toy_backends``) must be importable by dotted path, because task
configurations name their callables that way.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

_TESTS_DIR = str(Path(__file__).resolve().parent)
if _TESTS_DIR not in sys.path:
    sys.path.insert(0, _TESTS_DIR)

from core_toy_backends import FakeClock  # noqa: E402

from triggers.memory import MemoryStorageBackend  # noqa: E402


@pytest.fixture
def namespace() -> Iterator[str]:
    """A memory-backend namespace of this test alone, emptied afterwards."""
    name = f"core-tests-{uuid.uuid4().hex}"
    yield name
    MemoryStorageBackend.clear(name)


@pytest.fixture
def uid() -> str:
    """A session uid no other test uses (leases are process-wide)."""
    return f"session-{uuid.uuid4().hex}"


@pytest.fixture
def memory_storage(uid: str, namespace: str) -> Iterator[MemoryStorageBackend]:
    storage = MemoryStorageBackend(uid, namespace=namespace)
    yield storage
    storage.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()
