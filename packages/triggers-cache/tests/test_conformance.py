"""The shared conformance suite, and the key-value layout's rules, on every cache Django ships."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from cache_raw_store import CacheRawStore

from triggers.storage import TriggerStorageBackend
from triggers_cache import CacheStorageBackend
from triggers_conformance import BackendConformance, KeyValueConformance, RawStore, StorageFactory


def _options(alias: str) -> dict[str, Any]:
    """A fresh key prefix in the cache ``alias``."""
    return {"cache": alias, "key_prefix": f"c{uuid.uuid4().hex[:12]}"}


def _factory(cache_options: dict[str, Any]) -> StorageFactory:
    def make(uid: str, **options: Any) -> TriggerStorageBackend:
        return CacheStorageBackend(uid, **cache_options, **options)

    return make


class TestCacheBackend(BackendConformance):
    bad_options = [
        ({"timeout": 0}, "timeout must be a finite number of seconds above zero.*not 0"),
        ({"timeout": "1"}, "timeout must be .* not '1'"),
        ({"timeout": float("inf")}, "timeout must be .* not inf"),
        ({"timeout": 60, "session_ttl": 60}, "timeout or as session_ttl, not both"),
        ({"color": "red"}, "takes no option named color"),
    ]

    @pytest.fixture
    def cache_options(self, cache_alias: str) -> dict[str, Any]:
        return _options(cache_alias)

    @pytest.fixture
    def make_storage(self, cache_options: dict[str, Any]) -> StorageFactory:
        return _factory(cache_options)

    @pytest.fixture
    def raw_store(self, cache_options: dict[str, Any]) -> RawStore:
        return CacheRawStore(cache_options)


class TestCacheLayout(KeyValueConformance):
    """Each kind of key lost, savers dying half way, constant bytes per fire: on every cache."""

    @pytest.fixture
    def make_storage(self, cache_alias: str) -> StorageFactory:
        return _factory(_options(cache_alias))
