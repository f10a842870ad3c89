"""The key-value primitives on a Django cache: through Django's API, or Redis's own client.

Through Django's API (:class:`DjangoPrimitives`) a value is what Django makes
of it: a ``str`` is stored as text on memcached and pickled elsewhere, and a
pickled string is only a string (nothing of ours is ever a pickled object).
On Redis (:class:`RedisPrimitives`) values are written as they are, through
the redis-py client of Django's ``RedisCache`` or of django-redis, under the
keys Django would make (``KEY_PREFIX``, version): the save's script writes
plain text, so everything else must read and write it the same way.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

__all__ = ["DjangoPrimitives", "NotStored", "Primitives", "RedisPrimitives", "milliseconds"]


class NotStored(RuntimeError):
    """The cache answered, but did not store what it was given (full, or a value too large).

    A driver error like any other: the core reports it naming the session and
    the cache (``could not save session ... on cache ...``).
    """


def _seconds(ttl: float | None) -> int | None:
    """A time to live as Django's API takes it: whole seconds, rounded up (never 0: that is "expired")."""
    return None if ttl is None else max(1, math.ceil(ttl))


def milliseconds(ttl: float | None) -> int | None:
    return None if ttl is None else max(1, round(ttl * 1000))


class DjangoPrimitives:
    """The primitives through Django's cache API (every cache but Redis)."""

    def __init__(self, cache: Callable[[], Any]) -> None:
        self.cache = cache

    def get(self, key: str) -> object | None:
        found: object | None = self.cache().get(key)
        return found

    def get_many(self, keys: Sequence[str]) -> Mapping[str, object]:
        found: Mapping[str, object] = self.cache().get_many(keys)
        return found

    def add(self, key: str, value: str, ttl: float | None) -> bool:
        return bool(self.cache().add(key, value, timeout=_seconds(ttl)))

    def set(self, key: str, value: str, ttl: float | None) -> None:
        self.cache().set(key, value, timeout=_seconds(ttl))

    def set_many(self, values: Mapping[str, str], ttl: float | None) -> None:
        failed = self.cache().set_many(dict(values), timeout=_seconds(ttl))
        if failed:
            raise NotStored(f"the cache did not store {len(failed)} of {len(values)} documents")

    def touch(self, key: str, ttl: float | None) -> bool:
        return bool(self.cache().touch(key, timeout=_seconds(ttl)))

    def touch_many(self, keys: Sequence[str], ttl: float | None) -> None:
        for key in keys:
            self.touch(key, ttl)

    def delete(self, *keys: str) -> None:
        self.cache().delete_many(list(keys))


class RedisPrimitives:
    """The primitives through the redis-py client of a Django cache, without pickle."""

    def __init__(self, cache: Callable[[], Any], client: Callable[[Any], Any]) -> None:
        self.cache = cache
        self._client_of = client

    def client(self) -> Any:
        """The redis-py client (the primary: reads must see the latest write)."""
        return self._client_of(self.cache())

    def name(self, key: str) -> str:
        """``key`` as Django's cache names it in Redis."""
        name: str = self.cache().make_and_validate_key(key)
        return name

    def get(self, key: str) -> object | None:
        found: object | None = self.client().get(self.name(key))
        return found

    def get_many(self, keys: Sequence[str]) -> Mapping[str, object]:
        found = self.client().mget([self.name(key) for key in keys])
        return {key: raw for key, raw in zip(keys, found, strict=True) if raw is not None}

    def add(self, key: str, value: str, ttl: float | None) -> bool:
        return bool(self.client().set(self.name(key), value, nx=True, px=milliseconds(ttl)))

    def set(self, key: str, value: str, ttl: float | None) -> None:
        self.client().set(self.name(key), value, px=milliseconds(ttl))

    def set_many(self, values: Mapping[str, str], ttl: float | None) -> None:
        pipeline = self.client().pipeline(transaction=False)
        for key, value in values.items():
            pipeline.set(self.name(key), value, px=milliseconds(ttl))
        pipeline.execute()

    def touch(self, key: str, ttl: float | None) -> bool:
        client, name = self.client(), self.name(key)
        return bool(client.persist(name) or client.exists(name)) if ttl is None else bool(
            client.pexpire(name, milliseconds(ttl))
        )

    def touch_many(self, keys: Sequence[str], ttl: float | None) -> None:
        pipeline = self.client().pipeline(transaction=False)
        for key in keys:
            if ttl is None:
                pipeline.persist(self.name(key))
            else:
                pipeline.pexpire(self.name(key), milliseconds(ttl))
        pipeline.execute()

    def delete(self, *keys: str) -> None:
        if keys:
            self.client().delete(*(self.name(key) for key in keys))


Primitives = DjangoPrimitives | RedisPrimitives
"""How a :class:`~triggers_cache.store.CacheStore` reads and writes its keys."""
