"""The reference key-value store: a dict in this process, with expiry.

It shows what a :class:`~triggers.keyvalue.KeyValueStore` subclass is (the six
primitives, nothing else), and it is what the layout's own tests run on
before they run on real caches: ``DictStore`` forgets a key the way a cache
does (expiry, or a test deleting it as eviction would), so every rule of
the layout can be checked without a server.

Like the ``memory`` backend it is process-local: other processes never see
its sessions and its lock excludes only this process's threads.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError
from triggers.keyvalue.store import KeyValueStorageBackend, KeyValueStore

__all__ = ["DictStorageBackend", "DictStore"]


class DictStore(KeyValueStore):
    """Keys and values in a dict, each with its expiry by ``time.monotonic()``.

    ``namespace`` (default ``"default"``) names the dict: stores of one
    namespace in one process share it.
    """

    capabilities = Capabilities(fenced_saves=True, partial_loads=True, ttl=True)
    driver_errors = ()  # no driver: any exception here is a bug, and propagates as one

    _namespaces: ClassVar[dict[str, dict[str, tuple[str, float | None]]]] = {}
    _mutex: ClassVar[threading.Lock] = threading.Lock()

    def __init__(self, *, namespace: str = "default", **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(namespace, str):
            raise ConfigurationError(f"namespace must be a str, not {type(namespace).__name__}")
        self.namespace = namespace
        with self._mutex:
            self.data = self._namespaces.setdefault(namespace, {})

    def describe(self) -> str:
        return f"dict namespace {self.namespace!r}"

    def _live(self, key: str) -> str | None:
        found = self.data.get(key)
        if found is None:
            return None
        if found[1] is not None and found[1] <= time.monotonic():
            del self.data[key]
            return None
        return found[0]

    @staticmethod
    def _expiry(ttl: float | None) -> float | None:
        return None if ttl is None else time.monotonic() + ttl

    def get(self, key: str) -> object | None:
        with self._mutex:
            return self._live(key)

    def get_many(self, keys: Sequence[str]) -> Mapping[str, object]:
        with self._mutex:
            found = {key: self._live(key) for key in keys}
        return {key: value for key, value in found.items() if value is not None}

    def add(self, key: str, value: str, ttl: float | None) -> bool:
        with self._mutex:
            if self._live(key) is not None:
                return False
            self.data[key] = (value, self._expiry(ttl))
            return True

    def set(self, key: str, value: str, ttl: float | None) -> None:
        with self._mutex:
            self.data[key] = (value, self._expiry(ttl))

    def touch(self, key: str, ttl: float | None) -> bool:
        with self._mutex:
            value = self._live(key)
            if value is not None:
                self.data[key] = (value, self._expiry(ttl))
            return value is not None

    def delete(self, *keys: str) -> None:
        with self._mutex:
            for key in keys:
                self.data.pop(key, None)


class DictStorageBackend(KeyValueStorageBackend):
    """Sessions in a :class:`DictStore` (for tests and examples)."""

    store_class = DictStore
    capabilities: ClassVar[Capabilities] = DictStore.capabilities
