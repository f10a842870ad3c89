"""triggers-cache: Triggers session state in any Django cache (entry point ``cache``)."""

from triggers.errors import SessionLostError
from triggers_cache.backend import CacheStorageBackend
from triggers_cache.settings import configure
from triggers_cache.store import CacheStore

__version__ = "0.1.0"

__all__ = ["CacheStorageBackend", "CacheStore", "SessionLostError", "configure"]
