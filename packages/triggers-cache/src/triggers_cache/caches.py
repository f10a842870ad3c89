"""Which Django cache a session uses, and what that cache can guarantee.

Django keeps one cache object per thread (some clients, pymemcache's among
them, are not thread-safe). This module does the same per thread *and per
process*: a client inherited across ``fork()`` shares its sockets with the
parent, so a forked child builds its own. For the same reason a forked child
forgets (without closing: closing would end the parent's connection too) the
database connections ``DatabaseCache`` inherited.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from enum import Enum
from typing import Any

from triggers.errors import ConfigurationError

__all__ = [
    "CacheKind",
    "cache_for",
    "kind_of",
    "redis_client",
    "require_driver",
    "require_one_server",
    "truncates_expiry",
]


class CacheKind(Enum):
    """How far a cache's ``add()`` and contents reach, and what else it offers."""

    REDIS = "Django's RedisCache"  # shared, scripts, redis-py locks
    DJANGO_REDIS = "django-redis"  # the same, through django-redis's client
    DATABASE = "database table"  # DatabaseCache: shared, atomic add, expiry by Django's clock
    MEMCACHED = "memcached (pymemcache)"  # shared, compare-and-set, 1 MB values, whole-second expiry
    PYLIBMC = "memcached (pylibmc)"  # shared, atomic add, 1 MB values, whole-second expiry
    PROCESS_LOCAL = "one process"  # LocMemCache
    FILE = "files, add not atomic"  # FileBasedCache
    UNKNOWN = "unknown"


_KINDS = {
    "django.core.cache.backends.redis.RedisCache": CacheKind.REDIS,
    "django_redis.cache.RedisCache": CacheKind.DJANGO_REDIS,
    "django.core.cache.backends.db.DatabaseCache": CacheKind.DATABASE,
    "django.core.cache.backends.memcached.PyMemcacheCache": CacheKind.MEMCACHED,
    "django.core.cache.backends.memcached.PyLibMCCache": CacheKind.PYLIBMC,
    "django.core.cache.backends.locmem.LocMemCache": CacheKind.PROCESS_LOCAL,
    "django.core.cache.backends.filebased.FileBasedCache": CacheKind.FILE,
}

_DRIVERS = {
    # kind: (module the cache imports, what to install)
    CacheKind.REDIS: ("redis", 'pip install "triggers-cache[redis]"'),
    CacheKind.DJANGO_REDIS: ("django_redis", 'pip install "triggers-cache[django-redis]"'),
    CacheKind.MEMCACHED: ("pymemcache", 'pip install "triggers-cache[memcached]"'),
    CacheKind.PYLIBMC: ("pylibmc", "pip install pylibmc"),
}


def require_driver(cache_class: type, name: str = "the cache") -> None:
    """Fail now, naming the pip command, if the driver the cache needs is not installed.

    Django imports a cache's driver only when the cache object is made or
    first used; a storage would otherwise fail at its first load, far from
    the cause, with a bare ImportError.
    """
    kind = kind_of_class(cache_class)
    driver = _DRIVERS.get(kind)
    if driver is None or importlib.util.find_spec(driver[0]) is not None:
        return
    raise ConfigurationError(
        f"{name} is {kind.value}, whose driver {driver[0]!r} is not installed: {driver[1]}"
    )


def redis_client(cache: Any) -> Any:
    """The redis-py client (primary) of Django's RedisCache or of django-redis."""
    if kind_of(cache) is CacheKind.DJANGO_REDIS:
        return cache.client.get_client(write=True)
    return cache._cache.get_client(None, write=True)


def require_one_server(cache: Any, name: str) -> None:
    """Refuse django-redis's ShardClient: it spreads one session's keys over several servers.

    A save's script must see the head, the lock and the history documents on
    one server; sharded, it would check and write on the wrong ones.
    """
    if kind_of(cache) is CacheKind.DJANGO_REDIS and any(
        cls.__name__ == "ShardClient" for cls in type(cache.client).__mro__
    ):
        raise ConfigurationError(
            f"{name} uses django-redis's ShardClient, which spreads a session's keys over "
            "several servers; give Triggers a cache alias with the DefaultClient"
        )


def kind_of(cache: Any) -> CacheKind:
    """The kind of a cache object, by its class (or the nearest known base class)."""
    return kind_of_class(type(cache))


def kind_of_class(cache_class: type) -> CacheKind:
    """The kind of a cache class (or of its nearest known base class)."""
    for cls in cache_class.__mro__:
        kind = _KINDS.get(f"{cls.__module__}.{cls.__qualname__}")
        if kind is not None:
            return kind
    return CacheKind.UNKNOWN


def truncates_expiry(cache: Any) -> bool:
    """True for a cache whose expiry times have a granularity of one second.

    Django's DatabaseCache rounds them down (``exp.replace(microsecond=0)``)
    and memcached's clock ticks once a second, so a key set with
    ``timeout=n`` can live as little as ``n - 1`` seconds there.
    """
    return kind_of(cache) in (CacheKind.MEMCACHED, CacheKind.PYLIBMC, CacheKind.DATABASE)


_local = threading.local()
_orphans: list[Any] = []


def cache_for(alias: str) -> Any:
    """The cache ``alias`` of Django's ``CACHES`` for this thread of this process."""
    from django.conf import settings

    # A Django project's settings are configured lazily, on first access: a
    # script or command (``triggers``) run with DJANGO_SETTINGS_MODULE set
    # has not touched them yet, but reading settings.CACHES below loads them.
    if not settings.configured and not os.environ.get("DJANGO_SETTINGS_MODULE"):
        raise ConfigurationError(
            "Django settings are not configured: inside a Django project set CACHES; in a "
            "plain script call triggers_cache.configure({...}) first"
        )
    if getattr(_local, "pid", None) != os.getpid():
        _local.pid, _local.caches = os.getpid(), {}
    found = _local.caches.get(alias)
    if found is None:
        if alias not in settings.CACHES:
            raise ConfigurationError(
                f"cache={alias!r} is not in Django's CACHES (configured: {', '.join(settings.CACHES)})"
            )
        found = _local.caches[alias] = _create(alias, settings.CACHES[alias])
    return found


def _create(alias: str, config: dict[str, Any]) -> Any:
    """A new cache object from its ``CACHES`` entry, as Django's own handler builds it.

    Read from ``settings.CACHES`` each time (Django's handler reads it once),
    so aliases added after the first use still work.
    """
    from django.utils.module_loading import import_string

    params = dict(config)
    try:
        backend = import_string(params.pop("BACKEND"))
    except ImportError as error:
        if str(config.get("BACKEND", "")).startswith("django_redis."):
            raise ConfigurationError(
                f"cache {alias!r}: BACKEND {config['BACKEND']!r} comes with django-redis, "
                f"which is not installed: {_DRIVERS[CacheKind.DJANGO_REDIS][1]}"
            ) from error
        raise
    require_driver(backend, f"cache {alias!r}")
    if kind_of_class(backend) is CacheKind.MEMCACHED:
        params["OPTIONS"] = {**PYMEMCACHE_FAIL_LOUDLY, **params.get("OPTIONS", {})}
    return backend(params.pop("LOCATION", ""), params)


PYMEMCACHE_FAIL_LOUDLY = {"retry_attempts": 0, "dead_timeout": 0}
"""pymemcache client options for our own cache objects (a project's OPTIONS win).

By default pymemcache's HashClient, after one failed call, answers every call
for a second with a default value (``get`` -> None, ``add`` -> False) instead
of an error: during an outage a live session would load as a missing one.
With these options every call during an outage raises, and the first call
after the server is back reconnects.
"""


def _forget_inherited_database_connections() -> None:
    import sys

    if "django.db" not in sys.modules:
        return
    from django.db import connections

    for connection in connections.all(initialized_only=True):
        _orphans.append(connection.connection)  # kept referenced: never closed, never used
        connection.connection = None


os.register_at_fork(after_in_child=_forget_inherited_database_connections)
