"""``CacheStore``: a Django cache as a key-value store, its kind chosen by its configuration.

The layout, the fenced saves and the leases are the core's
(:mod:`triggers.keyvalue`); what a cache adds is chosen here, once, from the
kind of cache an alias names (:class:`~triggers_cache.caches.CacheKind`):

* Redis, django-redis: keys through redis-py, without pickle; a save is one
  script, the lock redis-py's ``Lock`` (:mod:`~triggers_cache.store_redis`);
* memcached through pymemcache: a save is a compare-and-set, the lock an
  ``add``, then ``cas`` (:mod:`~triggers_cache.store_memcached`);
* memcached through pylibmc: a chain of heads, the lock an ``add``;
* the database cache: a chain of heads, the lock SQL on its table
  (:mod:`~triggers_cache.leases`);
* the local-memory cache: a chain of heads, the lock under its mutex;
* the file cache and caches this library does not know: a chain of heads,
  unfenced, and a lock within this process only;

and with it what the store guarantees (:data:`CAPABILITIES`): the conformance
suite checks each cache against what it really promises.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError
from triggers.keyvalue import AddLeases, ChainHeads, KeyValueStore, ProcessLeases, SessionKeys
from triggers.keyvalue.codec import Head
from triggers.stores import validated_session_ttl
from triggers_cache.caches import (
    CacheKind,
    cache_for,
    kind_of,
    redis_client,
    require_driver,
    require_one_server,
)
from triggers_cache.leases import DatabaseLeases, LocalMemoryLeases
from triggers_cache.legacy import legacy_version, load_legacy
from triggers_cache.primitives import DjangoPrimitives, Primitives, RedisPrimitives
from triggers_cache.store_memcached import MemcachedSessions
from triggers_cache.store_redis import RedisSessions

__all__ = ["CAPABILITIES", "MEMCACHED_ITEM_BYTES", "CacheStore"]

MEMCACHED_ITEM_BYTES = 1_000_000
"""Largest value stored on memcached by default: its item size (1 MiB), key and header included."""

_SERVER = Capabilities(
    shared_state=True,
    cross_process_locking=True,
    fenced_saves=True,
    skew_safe_leases=True,  # the lock key expires on the cache server's clock
    optimistic_saves=True,
    partial_loads=True,
    ttl=True,
    min_lease_seconds=1.0,
)
_CHAIN = dataclasses.replace(_SERVER, optimistic_saves=False)

CAPABILITIES: dict[CacheKind, Capabilities] = {
    CacheKind.REDIS: _SERVER,
    CacheKind.DJANGO_REDIS: _SERVER,
    CacheKind.MEMCACHED: _SERVER,  # and max_record_bytes, from the item size
    CacheKind.PYLIBMC: _CHAIN,
    # Django compares a row's expiry with each process's own clock.
    CacheKind.DATABASE: dataclasses.replace(_CHAIN, skew_safe_leases=False),
    CacheKind.PROCESS_LOCAL: Capabilities(fenced_saves=True, partial_loads=True, ttl=True, min_lease_seconds=1.0),
    # add() checks, then writes: two processes can both succeed, so no lock or fence across processes.
    CacheKind.FILE: Capabilities(shared_state=True, partial_loads=True, ttl=True),
    CacheKind.UNKNOWN: Capabilities(shared_state=True, partial_loads=True, ttl=True),
}
"""What each kind of cache guarantees."""

_TRANSIENT = frozenset({
    "redis.exceptions.ConnectionError",
    "redis.exceptions.TimeoutError",
    "pymemcache.exceptions.MemcacheUnexpectedCloseError",
})


class CacheStore(KeyValueStore):
    """Sessions in one Django cache (see the module docstring, and the backend's options)."""

    capabilities = _SERVER

    def __init__(
        self,
        *,
        cache: Any = "default",
        timeout: float | None = None,
        key_prefix: str = "triggers",
        max_item_size: int | None = None,
        **options: Any,
    ) -> None:
        if timeout is not None and options.get("session_ttl") is not None:
            raise ConfigurationError("give the session's time to live as timeout or as session_ttl, not both")
        if timeout is not None:
            options["session_ttl"] = validated_session_ttl(timeout, "timeout")
        super().__init__(key_prefix=key_prefix, **options)
        self.alias = cache if isinstance(cache, str) else None
        self._object = None if self.alias is not None else _checked_cache_object(cache)
        name = self.describe()
        require_driver(type(self.cache), name)
        self.kind = kind_of(self.cache)
        require_one_server(self.cache, name)
        self.capabilities = CAPABILITIES[self.kind]
        self.primitives: Primitives = DjangoPrimitives(self._cache_getter)
        self._choose_sessions(_item_bytes(max_item_size, self.kind))

    def _choose_sessions(self, item_bytes: int) -> None:
        """The saves and the lock this kind of cache does best."""
        kind = self.kind
        if kind in (CacheKind.REDIS, CacheKind.DJANGO_REDIS):
            self.primitives = RedisPrimitives(self._cache_getter, redis_client)
            self.heads = self.leases = RedisSessions(self, self.primitives)
        elif kind is CacheKind.MEMCACHED:
            self.heads = self.leases = MemcachedSessions(self, item_bytes=item_bytes)
        elif kind is CacheKind.PYLIBMC:
            self.leases = AddLeases(self, whole_seconds=True)
        elif kind is CacheKind.DATABASE:
            self.leases = DatabaseLeases(self)
        elif kind is CacheKind.PROCESS_LOCAL:
            self.leases = LocalMemoryLeases(self)
        else:
            self.heads, self.leases = ChainHeads(self, fenced=False), ProcessLeases(self)
        if kind in (CacheKind.MEMCACHED, CacheKind.PYLIBMC):
            # The head must hold two instances, and the configurations, in one item.
            self.capabilities = dataclasses.replace(self.capabilities, max_record_bytes=item_bytes * 2 // 5)

    @property
    def cache(self) -> Any:
        """The Django cache object for this thread."""
        return self._object if self.alias is None else cache_for(self.alias)

    def _cache_getter(self) -> Any:
        return self.cache

    def describe(self) -> str:
        return f"cache {self.alias!r}" if self.alias is not None else "the cache"

    def is_transient(self, error: BaseException) -> bool:
        """A connection refused, reset or timed out: the server may be back at the next try."""
        if isinstance(error, ConnectionError | TimeoutError):
            return True
        return any(f"{cls.__module__}.{cls.__qualname__}" in _TRANSIENT for cls in type(error).__mro__)

    # -- the primitives, by kind -------------------------------------------------------

    def get(self, key: str) -> object | None:
        return self.primitives.get(key)

    def get_many(self, keys: Sequence[str]) -> Mapping[str, object]:
        return self.primitives.get_many(keys)

    def add(self, key: str, value: str, ttl: float | None) -> bool:
        return self.primitives.add(key, value, ttl)

    def set(self, key: str, value: str, ttl: float | None) -> None:
        self.primitives.set(key, value, ttl)

    def set_many(self, values: Mapping[str, str], ttl: float | None) -> None:
        self.primitives.set_many(values, ttl)

    def touch(self, key: str, ttl: float | None) -> bool:
        return self.primitives.touch(key, ttl)

    def touch_many(self, keys: Sequence[str], ttl: float | None) -> None:
        self.primitives.touch_many(keys, ttl)

    def delete(self, *keys: str) -> None:
        self.primitives.delete(*keys)

    # -- sessions of triggers-cache 0.1 ------------------------------------------------

    def is_older_layout(self, raw: object) -> bool:
        return legacy_version(raw) is not None

    def load_older_layout(self, uid: str, keys: SessionKeys, raw: object) -> Head | None:
        version = legacy_version(raw)
        assert version is not None
        return load_legacy(uid, keys, version, self.get_many)


def _checked_cache_object(cache: Any) -> Any:
    if not all(hasattr(cache, method) for method in ("get", "add", "set", "delete", "get_many")):
        raise ConfigurationError(
            f"cache= must be an alias of Django's CACHES or a Django cache object, got {type(cache).__name__}"
        )
    return cache


def _item_bytes(max_item_size: object, kind: CacheKind) -> int:
    """``max_item_size`` (memcached's ``-I``), checked."""
    if max_item_size is None:
        return MEMCACHED_ITEM_BYTES
    if kind not in (CacheKind.MEMCACHED, CacheKind.PYLIBMC):
        raise ConfigurationError(f"max_item_size applies to memcached only, not to {kind.value}")
    if isinstance(max_item_size, bool) or not isinstance(max_item_size, int) or max_item_size < 100_000:
        raise ConfigurationError(
            f"max_item_size={max_item_size!r}: give memcached's item size (its -I) in bytes, at least 100000"
        )
    return max_item_size
