"""The shared conformance suite, and the key-value layout's rules, on every cache Django ships."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from triggers.storage import TriggerStorageBackend
from triggers_cache import CacheStorageBackend
from triggers_conformance import BackendConformance, KeyValueConformance, StorageFactory


def _factory(alias: str) -> StorageFactory:
    prefix = f"c{uuid.uuid4().hex[:12]}"

    def make(uid: str, **options: Any) -> TriggerStorageBackend:
        return CacheStorageBackend(uid, cache=alias, key_prefix=prefix, **options)

    return make


class TestCacheBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, cache_alias: str) -> StorageFactory:
        return _factory(cache_alias)


class TestCacheLayout(KeyValueConformance):
    """Each kind of key lost, savers dying half way, constant bytes per fire: on every cache."""

    @pytest.fixture
    def make_storage(self, cache_alias: str) -> StorageFactory:
        return _factory(cache_alias)
