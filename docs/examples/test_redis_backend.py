"""The storage page's key-value example: a Redis backend from six primitives, and its tests.

``docs/storage.md`` includes the sections below. pytest collects this file
from ``docs/`` and runs the whole conformance suite, and the key-value
layout's own rules, against the backend on the Redis at 127.0.0.1:6379
(found running, or a missing server: under ``CI=true`` a failure), so the
page's claim that these lines make a backend is checked in CI.
"""

from __future__ import annotations

# --8<-- [start:backend]
from collections.abc import Mapping, Sequence
from typing import Any

import redis

from triggers.keyvalue import KeyValueStorageBackend, KeyValueStore


def milliseconds(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


class RedisStore(KeyValueStore):
    """Sessions in one Redis database, through redis-py."""

    driver_errors = (redis.RedisError,)

    def __init__(self, *, url: str = "redis://127.0.0.1:6379/0", **options: Any) -> None:
        super().__init__(**options)  # key_prefix, session_ttl
        self.url = url
        self.redis = redis.Redis.from_url(url)  # connects on first use

    def describe(self) -> str:
        return f"Redis at {self.url}"

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(error, redis.ConnectionError | redis.TimeoutError)

    def get(self, key: str) -> object | None:
        return self.redis.get(key)

    def get_many(self, keys: Sequence[str]) -> Mapping[str, object]:
        return {key: value for key, value in zip(keys, self.redis.mget(keys), strict=True) if value is not None}

    def add(self, key: str, value: str, ttl: float | None) -> bool:
        return bool(self.redis.set(key, value, nx=True, px=milliseconds(ttl)))  # SET NX PX

    def set(self, key: str, value: str, ttl: float | None) -> None:
        self.redis.set(key, value, px=milliseconds(ttl))

    def touch(self, key: str, ttl: float | None) -> bool:
        if ttl is None:
            return bool(self.redis.persist(key) or self.redis.exists(key))
        return bool(self.redis.pexpire(key, max(1, round(ttl * 1000))))

    def delete(self, *keys: str) -> None:
        self.redis.delete(*keys)


class RedisStorageBackend(KeyValueStorageBackend):
    store_class = RedisStore
    capabilities = RedisStore.capabilities
# --8<-- [end:backend]


# --8<-- [start:conformance]
import uuid
from collections.abc import Iterator

import pytest

from triggers_conformance import BackendConformance, KeyValueConformance
from triggers_conformance.servers import Server, serve


@pytest.fixture(scope="module")
def redis_server() -> Iterator[None]:
    with serve(Server("Redis", "127.0.0.1", 6379)):  # found running, or missing: CI fails
        yield


@pytest.fixture
def make_redis_storage(redis_server: None) -> Any:
    prefix = f"doc-{uuid.uuid4().hex[:12]}"  # each test's own keys, gone an hour later

    def make(uid: str, **options: Any) -> RedisStorageBackend:
        return RedisStorageBackend(uid, key_prefix=prefix, session_ttl=3600, **options)

    return make


class TestRedisBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, make_redis_storage: Any) -> Any:
        return make_redis_storage


class TestRedisBackendLayout(KeyValueConformance):
    @pytest.fixture
    def make_storage(self, make_redis_storage: Any) -> Any:
        return make_redis_storage
# --8<-- [end:conformance]
