"""``CacheStorageBackend``: session state in any Django cache (entry point ``cache``).

The store is a :class:`~triggers_cache.store.CacheStore`, a key-value store of
the core (:mod:`triggers.keyvalue`) whose saves and lock follow the kind of
cache its alias names; this class only names it. Every kind of cache is
served by this one class, and each session object claims what its cache
guarantees (``storage.capabilities``; ``CacheStorageBackend.capabilities_for(cache=...)``
without opening a session).
"""

from __future__ import annotations

from typing import ClassVar

from triggers.capabilities import Capabilities
from triggers.keyvalue import KeyValueStorageBackend
from triggers_cache.store import CacheStore

__all__ = ["CacheStorageBackend"]


class CacheStorageBackend(KeyValueStorageBackend):
    """Session state in a Django cache: Redis, memcached, database, file or local memory.

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``)::

        storage_backends.get("cache", uid, cache="default", timeout=86400, key_prefix="triggers")

    ``cache`` (default ``"default"``)
        An alias of Django's ``CACHES``, or a cache object (which you then
        keep per thread, as Django does). Its kind decides how saves are made
        atomic and how sessions are locked, and so the capabilities.
    ``timeout`` (default ``None``)
        The session's time to live in seconds after its last save, a finite
        number above zero, or ``None`` to never expire (Django's name for it;
        ``session_ttl``, the name other backends use, is accepted too).
        History lives twice as long (see the README).
    ``key_prefix`` (default ``"triggers"``)
        Prefix of this library's keys (Django adds the cache's KEY_PREFIX).
    ``max_item_size`` (memcached only; default 1,000,000)
        memcached's item size (its ``-I``) in bytes: a session's head
        (configurations, metadata, unfinished instances) must fit one item.

    ``store`` is the session's cache (a :class:`~triggers_cache.store.CacheStore`,
    shared by the process): for operators and tests that look at what is
    stored, through its primitives (``store.get(key)``) and its keys
    (``store.keys_for(uid)``).
    """

    store_class = CacheStore
    capabilities: ClassVar[Capabilities] = CacheStore.capabilities
    store: CacheStore

