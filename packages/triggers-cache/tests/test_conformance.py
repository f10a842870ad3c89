"""The shared conformance suite on every cache Django ships."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from triggers.storage import TriggerStorageBackend
from triggers_cache import CacheStorageBackend
from triggers_conformance import BackendConformance, StorageFactory


class TestCacheBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, cache_alias: str) -> StorageFactory:
        prefix = f"c{uuid.uuid4().hex[:12]}"

        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return CacheStorageBackend(uid, cache=cache_alias, key_prefix=prefix, **options)

        return make
