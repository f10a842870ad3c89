"""The conformance suite against the in-memory reference backend."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from triggers.memory import MemoryStorageBackend
from triggers.storage import TriggerStorageBackend
from triggers_conformance import BackendConformance, StorageFactory


class TestMemoryBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self) -> StorageFactory:
        namespace = f"conformance-{uuid.uuid4().hex}"

        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return MemoryStorageBackend(uid, namespace=namespace, **options)

        return make
