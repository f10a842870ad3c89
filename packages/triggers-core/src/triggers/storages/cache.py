"""Triggers 2.0's ``triggers.storages.cache``: the Django-cache backend, for ported code.

``CacheStorageBackend`` is :class:`triggers_cache.CacheStorageBackend` from
the ``triggers-cache`` distribution (registered as the ``cache`` backend).
Importing this module without that distribution raises an :class:`ImportError`
that says to ``pip install triggers-cache``.

Its options are keywords: ``CacheStorageBackend(uid, cache="default",
timeout=None)``. Unlike Triggers 2.0, ``timeout=None`` keeps a session until
it is deleted, rather than for the cache's default timeout, and sessions are
stored in a new layout: a session saved by Triggers 2.0 is not read back.
"""

from __future__ import annotations

try:
    from triggers_cache import CacheStorageBackend
except ModuleNotFoundError as exc:
    if exc.name != "triggers_cache":
        raise
    raise ImportError(
        "triggers.storages.cache.CacheStorageBackend is the Django-cache storage backend of "
        "the triggers-cache distribution, which is not installed: pip install triggers-cache"
    ) from exc

__all__ = ["CacheStorageBackend"]
