"""``CacheStorageBackend``: session state in any Django cache (entry point ``cache``).

A session is a small head (what a fire needs) and finished history written
once: :mod:`triggers_cache.layout`. How a save is made atomic and how the
session is locked depends on the cache, one store per way:

* Redis (Django's ``RedisCache``, django-redis): one server-side script per
  save, redis-py's lock (:mod:`triggers_cache.store_redis`);
* memcached through pymemcache: compare-and-set on the head
  (:mod:`triggers_cache.store_memcached`);
* the database, local-memory and file caches, pylibmc: a chain of immutable
  heads built on ``add()`` (:mod:`triggers_cache.store_chain`).

Opening a session picks the class for the cache's kind, and with it the
capabilities the conformance suite checks. This module only wires the core's
hooks to the store.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, StaleSessionError
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend
from triggers_cache.caches import (
    CacheKind,
    cache_for,
    kind_of,
    redis_client,
    require_driver,
    require_one_server,
    truncates_expiry,
)
from triggers_cache.keys import SessionKeys
from triggers_cache.layout import (
    Loaded,
    Store,
    history_tokens,
    plan_save,
    read_history,
    stored_session,
    wants_history,
)
from triggers_cache.leases import AddLease, DatabaseLease, LocalMemoryLease
from triggers_cache.store_chain import ChainStore
from triggers_cache.store_memcached import MemcachedStore
from triggers_cache.store_redis import RedisStore

__all__ = [
    "CacheStorageBackend",
    "DatabaseCacheStorageBackend",
    "FileCacheStorageBackend",
    "LocalCacheStorageBackend",
    "MemcachedStorageBackend",
]

MAX_RECORD_BYTES = 400_000
"""Largest instance on memcached: the head must hold two of them, and configs, in one item."""


class CacheStorageBackend(TriggerStorageBackend):
    """Session state in a Django cache; this class itself serves Redis.

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``):

    ``cache`` (default ``"default"``)
        An alias of Django's ``CACHES``, or a cache object (which you then
        keep per thread, as Django does).
    ``timeout`` (default ``None``)
        The session's time to live in seconds after its last save, with
        Django's semantics: ``None`` never expires.
    ``key_prefix`` (default ``"triggers"``)
        Prefix of this library's keys (Django adds the cache's KEY_PREFIX).

    ``store`` is the session's keys in its cache (see the ``store_*``
    modules): for operators and tests that look at what is stored.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,  # the lock key expires on the cache server's clock
        optimistic_saves=True,
        partial_loads=True,
        ttl=True,
        min_lease_seconds=1.0,
    )

    def __new__(cls, uid: str, *, cache: Any = "default", **options: Any) -> CacheStorageBackend:
        if cls is CacheStorageBackend:
            cls = _CLASSES[kind_of(_resolve(cache))]
        return super().__new__(cls)

    def __init__(
        self,
        uid: str,
        *,
        cache: Any = "default",
        timeout: float | None = None,
        key_prefix: str = "triggers",
        **options: Any,
    ) -> None:
        super().__init__(uid, **options)
        self._alias = cache if isinstance(cache, str) else None
        self._cache_object = None if isinstance(cache, str) else _resolve(cache)
        require_driver(type(_resolve(cache)), f"cache {cache!r}" if self._alias else "the cache")
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ConfigurationError(
                f"timeout={timeout!r}: give the session's time to live in seconds (> 0), "
                "or None to never expire"
            )
        self.timeout = timeout
        self.keys = SessionKeys.for_uid(key_prefix, self.uid)
        self.store: Store = self._make_store()
        self._loaded = Loaded(None)

    @property
    def cache(self) -> Any:
        """The Django cache object for this thread."""
        return self._cache_object if self._alias is None else cache_for(self._alias)

    def _cache_getter(self) -> Any:
        return self.cache

    def _make_store(self) -> Store:
        require_one_server(self.cache, f"cache {self._alias!r}" if self._alias else "the cache")
        return RedisStore(self._cache_getter, redis_client, self.keys, self.uid, self.timeout)

    # -- the core's hooks ------------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        loaded = self.store.load()
        history = None
        if wants_history(loaded.head, scope):
            assert loaded.head is not None
            history = read_history(self.uid, loaded.head, self.store.fetch)
        self._loaded = loaded
        return stored_session(loaded.head, history)

    def _save_changes(self, changes: SessionChanges) -> None:
        base = self._loaded
        if (None if base.head is None else base.head.version) != changes.base_version:
            raise StaleSessionError(
                f"session {self.uid!r}: the changes were made to version {changes.base_version}, "
                "not to the version last read; nothing was written"
            )
        plan = plan_save(self.uid, base.head, changes, now=self.clock(), timeout=self.timeout)
        if plan.refresh and base.head is not None:
            self.store.touch(history_tokens(self.uid, base.head, self.store.fetch))
        self._loaded = self.store.write(base, plan, changes.lease)

    def _acquire_lease(self, lease: Lease) -> bool:
        return self.store.acquire(lease)

    def _renew_lease(self, lease: Lease) -> bool:
        return self.store.renew(lease)

    def _release_lease(self, lease: Lease) -> None:
        self.store.release(lease)


class MemcachedStorageBackend(CacheStorageBackend):
    """memcached: shared, compare-and-set through pymemcache; one item holds at most 1 MB.

    The head (configs, metadata, unfinished instances) must fit in one item,
    so one instance may take :data:`MAX_RECORD_BYTES`; finished history is
    split over as many items as it needs. Through pylibmc (no compare-and-set
    in Django's client) it keeps a chain of heads and saves under the lock.
    """

    capabilities: ClassVar[Capabilities] = dataclasses.replace(
        CacheStorageBackend.capabilities, max_record_bytes=MAX_RECORD_BYTES
    )

    def _make_store(self) -> Store:
        if kind_of(self.cache) is CacheKind.PYLIBMC:
            self._declare_capabilities(dataclasses.replace(self.capabilities, optimistic_saves=False))
            lease = AddLease(self._cache_getter, self.keys.lock, whole_seconds=truncates_expiry(self.cache))
            return ChainStore(self._cache_getter, self.keys, self.uid, self.timeout, lease=lease)
        return MemcachedStore(self._cache_getter, self.keys, self.uid, self.timeout)


class DatabaseCacheStorageBackend(CacheStorageBackend):
    """DatabaseCache: shared and locked across processes, but keys expire by the Django process's clock.

    Django compares a row's ``expires`` with the process's own ``now()``, so
    a process whose clock runs ahead takes a live lock key as expired: keep
    the clocks of every process in sync (NTP), or use a cache with a server.
    Saves run under the lock (no compare-and-set in Django's cache API).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        partial_loads=True,
        ttl=True,
        min_lease_seconds=1.0,
    )

    def _make_store(self) -> Store:
        lease = DatabaseLease(self._cache_getter, self.keys.lock, whole_seconds=truncates_expiry(self.cache))
        return ChainStore(self._cache_getter, self.keys, self.uid, self.timeout, lease=lease)


class LocalCacheStorageBackend(CacheStorageBackend):
    """LocMemCache: one process's memory; other processes never see its sessions."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        fenced_saves=True, partial_loads=True, ttl=True, min_lease_seconds=1.0
    )

    def _make_store(self) -> Store:
        lease = LocalMemoryLease(self._cache_getter, self.keys.lock, whole_seconds=truncates_expiry(self.cache))
        return ChainStore(self._cache_getter, self.keys, self.uid, self.timeout, lease=lease)


class FileCacheStorageBackend(CacheStorageBackend):
    """FileBasedCache (and caches this library does not know).

    Its ``add()`` checks and then writes, so two processes can both succeed:
    it cannot lock or fence across processes. Sessions are shared through the
    files, but the lock is process-local (the base class's lease table), so
    use one process per session, or another cache.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(shared_state=True, partial_loads=True, ttl=True)

    _acquire_lease = TriggerStorageBackend._acquire_lease
    _renew_lease = TriggerStorageBackend._renew_lease
    _release_lease = TriggerStorageBackend._release_lease

    def _make_store(self) -> Store:
        return ChainStore(self._cache_getter, self.keys, self.uid, self.timeout, lease=None)


_CLASSES: dict[CacheKind, type[CacheStorageBackend]] = {
    CacheKind.REDIS: CacheStorageBackend,
    CacheKind.DJANGO_REDIS: CacheStorageBackend,
    CacheKind.DATABASE: DatabaseCacheStorageBackend,
    CacheKind.MEMCACHED: MemcachedStorageBackend,
    CacheKind.PYLIBMC: MemcachedStorageBackend,
    CacheKind.PROCESS_LOCAL: LocalCacheStorageBackend,
    CacheKind.FILE: FileCacheStorageBackend,
    CacheKind.UNKNOWN: FileCacheStorageBackend,
}


def _resolve(cache: Any) -> Any:
    if isinstance(cache, str):
        return cache_for(cache)
    if not all(hasattr(cache, method) for method in ("get", "add", "set", "delete", "get_many")):
        raise ConfigurationError(
            f"cache= must be an alias of Django's CACHES or a Django cache object, "
            f"got {type(cache).__name__}"
        )
    return cache
