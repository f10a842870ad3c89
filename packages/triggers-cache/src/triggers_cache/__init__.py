"""triggers-cache: Triggers session state in any Django cache (entry point ``cache``)."""

from triggers_cache.backend import (
    CacheStorageBackend,
    DatabaseCacheStorageBackend,
    FileCacheStorageBackend,
    LocalCacheStorageBackend,
    MemcachedStorageBackend,
)
from triggers_cache.layout import SessionLostError
from triggers_cache.settings import configure

__version__ = "0.1.0"

__all__ = [
    "CacheStorageBackend",
    "DatabaseCacheStorageBackend",
    "FileCacheStorageBackend",
    "LocalCacheStorageBackend",
    "MemcachedStorageBackend",
    "SessionLostError",
    "configure",
]
