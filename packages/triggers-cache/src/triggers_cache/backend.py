"""``CacheStorageBackend``: session state in any Django cache (entry point ``cache``).

Django's cache API has ``get``, ``add``, ``set``, ``touch`` and ``delete``,
and no compare-and-set. Two things are built on ``add()`` ("store only if the
key is absent"), which is atomic on Redis, memcached, the database cache and
(within one process) the local-memory cache:

* **The lock** is a lease key holding a random token, added with the lease's
  time to live, so the cache itself ends a crashed holder's lease. Renewing
  and releasing first check that the key still holds our token. Django has no
  compare-and-delete, so a release can, in a window of one round trip, delete
  a lease that expired and was taken over just then; the fence below keeps the
  session safe even then.
* **Saves are fenced**: a session is a chain of immutable versions. Version
  ``N`` is one JSON document under its own key, and a save from version ``N``
  must *add* the key of version ``N + 1``: only one writer can, so a holder
  whose lease was taken over (or who loaded an older version) fails and
  writes nothing. A head key then points at the latest version; readers
  follow it and step forward past a save that has added its version but not
  yet moved the head (or crashed in between). The version before the
  previous one is deleted, so a session costs at most two documents.

Each save therefore writes the whole session once (caches have no partial
writes); the chain makes it atomic, since a reader sees one whole version or
another, never a mix.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, SessionLimitError, StaleSessionError
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend
from triggers_cache.caches import CacheKind, cache_for, kind_of, truncates_expiry
from triggers_cache.codec import SessionBlob, decode_blob, decode_head, encode_blob
from triggers_cache.keys import SessionKeys

__all__ = [
    "CacheStorageBackend",
    "DatabaseCacheStorageBackend",
    "FileCacheStorageBackend",
    "LocalCacheStorageBackend",
    "MemcachedStorageBackend",
]

MEMCACHED_VALUE_LIMIT = 1_000_000
"""Largest session document stored in memcached (its default item limit is 1 MiB)."""

_FORWARD_STEPS = 8
"""How far a reader steps past the head (one step per save that crashed mid-way)."""


def _whole_seconds(seconds: float) -> int:
    """Cache expiry is in whole seconds (memcached reads 0 as 'never'): round up."""
    return max(1, math.ceil(seconds))


class CacheStorageBackend(TriggerStorageBackend):
    """Session state in a Django cache (see the module docstring for how).

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``):

    ``cache`` (default ``"default"``)
        An alias of Django's ``CACHES``, or a cache object (which you then
        keep per thread, as Django does).
    ``timeout`` (default ``None``)
        The session's time to live in seconds after its last save, with
        Django's semantics: ``None`` never expires.
    ``key_prefix`` (default ``"triggers"``)
        Prefix of this library's keys (Django adds the cache's KEY_PREFIX).

    Opening a session picks the class for the cache's kind, and with it the
    capabilities the conformance suite checks: shared and atomic (Redis,
    django-redis), :class:`DatabaseCacheStorageBackend`, :class:`MemcachedStorageBackend`,
    :class:`LocalCacheStorageBackend` (LocMemCache) and
    :class:`FileCacheStorageBackend` (FileBasedCache, and caches it does not
    know).
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,  # the lock key expires on the cache server's clock
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
        _resolve(cache)  # fail now, with a clear message, on a bad alias
        if timeout is not None and (
            isinstance(timeout, bool) or not isinstance(timeout, int | float) or not timeout > 0
        ):
            raise ConfigurationError(
                f"timeout={timeout!r}: give the session's time to live in seconds (> 0), "
                "or None to never expire"
            )
        self.timeout = timeout
        self.keys = SessionKeys.for_uid(key_prefix, self.uid)

    @property
    def cache(self) -> Any:
        """The Django cache object for this thread."""
        return self._cache_object if self._alias is None else cache_for(self._alias)

    # -- loading -----------------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        keys = self.keys
        head = decode_head(self.uid, self.cache.get(keys.head))
        if head is None:
            return StoredSession({}, {}, {}, version=None)
        for _ in range(3):
            candidates = [keys.version(head + step) for step in range(_FORWARD_STEPS)]
            found = self.cache.get_many(candidates)
            latest = None
            for step in range(_FORWARD_STEPS):
                if keys.version(head + step) not in found:
                    break
                latest = head + step
            if latest is not None:
                blob = decode_blob(self.uid, found[keys.version(latest)], latest)
                return StoredSession(blob.configs, blob.instances, blob.metadata, version=latest)
            # The head's version is gone: a newer save deleted it (read the head
            # again), or the session expired or was evicted.
            newer = decode_head(self.uid, self.cache.get(keys.head))
            if newer is None or newer == head:
                break
            head = newer
        # Expired or evicted: an empty session that continues the chain.
        return StoredSession({}, {}, {}, version=head)

    # -- saving ------------------------------------------------------------------

    def _save_changes(self, changes: SessionChanges) -> None:
        keys, cache, new = self.keys, self.cache, changes.new_version
        document = self._document(new)
        self._check_document_size(len(document.encode("utf-8")))
        found = cache.get_many([keys.lock, keys.head])
        if found.get(keys.lock) != changes.lease_token:
            raise StaleSessionError(
                f"session {self.uid!r}: the lease was taken over by another holder; "
                "nothing was written"
            )
        head = decode_head(self.uid, found.get(keys.head))
        if not self._continues(head, changes.base_version) or not cache.add(
            keys.version(new), document, timeout=self.timeout
        ):
            raise StaleSessionError(
                f"session {self.uid!r}: a newer version than {changes.base_version} was "
                "saved by another holder; nothing was written"
            )
        cache.set(keys.head, str(new), timeout=self.timeout)
        if new > 2:
            cache.delete(keys.version(new - 2))

    def _continues(self, head: int | None, base: int | None) -> bool:
        """True if version ``base`` can still be the latest one the head leads to.

        The head equals it, or is behind it after saves that added their
        version and then crashed before moving the head (one per crash: the
        reader stepped forward over them to ``base``, whose key exists). A
        head *past* ``base`` means a newer save completed. Adding
        ``base + 1`` then decides between concurrent savers: a version is
        deleted only by the save two later, after that save moved the head
        past it, so a head at or behind ``base`` means ``base + 1`` was never
        added and deleted.
        """
        if head == base:
            return True
        return (
            head is not None
            and base is not None
            and head < base
            and bool(self.cache.has_key(self.keys.version(base)))
        )

    def _document(self, version: int) -> str:
        """The whole session as version ``version``'s JSON document."""
        state = SessionBlob(
            version,
            self._serialize(self._configs),
            self._serialize(self._instances),
            self._serialize(self._metas),
        )
        return encode_blob(self.uid, state)

    def _check_document_size(self, size: int) -> None:
        limit = self.capabilities.max_session_bytes
        # The document wraps the session in a few fields; allow for them.
        if limit is not None and size > limit + 1024:
            raise SessionLimitError(
                f"session {self.uid!r} takes {size} bytes; {type(self).__name__} stores at "
                f"most {limit}. Nothing was written"
            )

    # -- leases ------------------------------------------------------------------

    def _lease_timeout(self, lease: Lease) -> int:
        """The lock key's time to live: never shorter than the lease.

        One second more on a cache with one-second expiry granularity
        (DatabaseCache, memcached), where the key could otherwise vanish up to
        a second before the lease ends and let another process take the lock
        early.
        """
        return _whole_seconds(lease.ttl) + (1 if truncates_expiry(self.cache) else 0)

    def _acquire_lease(self, lease: Lease) -> bool:
        return bool(self.cache.add(self.keys.lock, lease.token, timeout=self._lease_timeout(lease)))

    def _renew_lease(self, lease: Lease) -> bool:
        if self.cache.get(self.keys.lock) != lease.token:
            return False
        return bool(self.cache.touch(self.keys.lock, timeout=self._lease_timeout(lease)))

    def _release_lease(self, lease: Lease) -> None:
        if self.cache.get(self.keys.lock) == lease.token:
            self.cache.delete(self.keys.lock)


class MemcachedStorageBackend(CacheStorageBackend):
    """memcached: shared and atomic, but values are limited to about 1 MB.

    A session too big to store raises :class:`SessionLimitError` before
    anything is written, so the stored version stays intact.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,  # the lock key expires on the memcached server's clock
        ttl=True,
        min_lease_seconds=1.0,
        max_session_bytes=MEMCACHED_VALUE_LIMIT,
    )


class DatabaseCacheStorageBackend(CacheStorageBackend):
    """DatabaseCache: shared and atomic, but keys expire by the Django process's clock.

    Django compares a row's ``expires`` with the process's own ``now()``, so
    a process whose clock runs ahead takes a live lock key as expired: keep
    the clocks of every process in sync (NTP), or use a cache with a server.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        ttl=True,
        min_lease_seconds=1.0,
    )


class LocalCacheStorageBackend(CacheStorageBackend):
    """LocMemCache: one process's memory; other processes never see its sessions."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        fenced_saves=True, ttl=True, min_lease_seconds=1.0
    )


class FileCacheStorageBackend(CacheStorageBackend):
    """FileBasedCache (and caches this library does not know).

    Its ``add()`` checks and then writes, so two processes can both succeed:
    it cannot lock or fence across processes. Sessions are shared through the
    files, but the lock is process-local (the base class's lease table), so
    use one process per session, or another cache.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(shared_state=True, ttl=True)

    _acquire_lease = TriggerStorageBackend._acquire_lease
    _renew_lease = TriggerStorageBackend._renew_lease
    _release_lease = TriggerStorageBackend._release_lease

    def _save_changes(self, changes: SessionChanges) -> None:
        # No lock key in the cache: the process-local lease already excludes
        # every other holder this cache can be fenced against.
        keys, cache, new = self.keys, self.cache, changes.new_version
        document = self._document(new)
        cache.set(keys.version(new), document, timeout=self.timeout)
        cache.set(keys.head, str(new), timeout=self.timeout)
        if new > 2:
            cache.delete(keys.version(new - 2))


_CLASSES: dict[CacheKind, type[CacheStorageBackend]] = {
    CacheKind.SHARED_ATOMIC: CacheStorageBackend,
    CacheKind.DATABASE: DatabaseCacheStorageBackend,
    CacheKind.MEMCACHED: MemcachedStorageBackend,
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
