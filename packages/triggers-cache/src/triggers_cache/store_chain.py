"""Caches without compare-and-set (database, local memory, file, pylibmc): a chain of heads.

Django's cache API has ``get``, ``add``, ``set``, ``touch`` and ``delete``;
``add`` ("store only if the key is absent") is atomic on the database cache
(a unique key), on memcached, and within its process on the local-memory
cache. A chain of immutable heads is built on it:

* each head is a key of its own, ``…:h:<epoch>:<version>``, written once;
  the head key holds a pointer to the latest one.
* a save runs under the lock (these caches cannot check the lock and write in
  one step, so they take no optimistic saves). It checks that the lock is
  still ours and that the pointer still leads to the head it loaded, writes
  the history documents, then *adds* the next head: only one writer can add a
  given version, so a holder whose lease was taken over and who got past the
  check still writes nothing. Then it moves the pointer and deletes the head
  before the previous one (readers may still be reading the previous one).
* readers follow the pointer and step forward over heads that a save added
  before it crashed, without moving the pointer.
* a pointer whose head is gone (evicted, or culled by the database cache)
  is a lost session: it loads as an empty one, and the next save starts a
  new epoch, so nothing of the old one is read again.

Unfenced caches (the file cache, whose ``add`` checks and then writes) use
the same layout without the checks; their lock is process-local.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from triggers.errors import StaleSessionError
from triggers.locking import Lease
from triggers_cache.codec import (
    Head,
    Pointer,
    corrupt,
    decode_head,
    decode_pointer,
    encode_pointer,
    legacy_version,
)
from triggers_cache.keys import SessionKeys
from triggers_cache.layout import Loaded, Plan, legacy_keys, load_legacy
from triggers_cache.leases import AddLease

__all__ = ["ChainStore"]

_STEPS = 8
"""Heads read at once when stepping forward from the pointer."""


class ChainStore:
    """A session's keys in a Django cache, through its own API only."""

    def __init__(
        self,
        cache: Callable[[], Any],
        keys: SessionKeys,
        uid: str,
        timeout: float | None,
        *,
        lease: AddLease | None,
    ) -> None:
        self._cache = cache
        self.keys = keys
        self.uid = uid
        self.timeout = timeout
        self._lease = lease
        """``None``: an unfenced cache, locked by the process-local lease table."""

    def load(self) -> Loaded:
        cache = self._cache()
        raw = cache.get(self.keys.head)
        for _ in range(3):
            if raw is None:
                return Loaded(None, None)
            version = legacy_version(raw)
            if version is not None:
                return Loaded(load_legacy(self.uid, self.keys, version, cache.get_many), raw)
            head = self._newest(decode_pointer(self.uid, raw))
            if head is not None:
                return Loaded(head, raw)
            again = cache.get(self.keys.head)  # a newer save may have deleted it: look again
            if again == raw:
                break
            raw = again
        return Loaded(None, raw)  # the pointer's head is gone: a lost session

    def _newest(self, pointer: Pointer) -> Head | None:
        """The newest head at or after the pointer's, or ``None`` if there is none."""
        cache, newest, start = self._cache(), None, pointer.version
        while True:
            names = {self.keys.chained_head(pointer.epoch, v): v for v in range(start, start + _STEPS)}
            found = cache.get_many(list(names))
            if not found:
                return newest
            name = max(found, key=names.__getitem__)
            newest = decode_head(self.uid, found[name])
            if newest is None or (newest.epoch, newest.version) != (pointer.epoch, names[name]):
                raise corrupt(self.uid, f"another head where head {names[name]} belongs")
            if names[name] < start + _STEPS - 1:
                return newest
            start += _STEPS

    def fetch(self, tokens: list[str]) -> Mapping[str, object]:
        names = {self.keys.document(token): token for token in tokens}
        return {names[name]: raw for name, raw in self._cache().get_many(list(names)).items()}

    def write(self, base: Loaded, plan: Plan, lease: Lease | None) -> Loaded:
        cache, head = self._cache(), plan.head
        if self._lease is not None:
            found = cache.get_many([self.keys.lock, self.keys.head])
            if lease is None or found.get(self.keys.lock) != lease.token:
                raise self._refused("the lease was taken over by another holder")
            if not self._continues(base, found.get(self.keys.head)):
                raise self._refused("a newer version was saved by another holder")
        history_timeout = None if self.timeout is None else 2 * self.timeout
        documents = {self.keys.document(t): text for t, text in plan.documents.items()}
        if documents and cache.set_many(documents, timeout=history_timeout):
            raise RuntimeError("the cache did not store the session's history documents")
        key = self.keys.chained_head(head.epoch, head.version)
        if self._lease is None:
            cache.set(key, plan.text, timeout=self.timeout)
        elif not cache.add(key, plan.text, timeout=self.timeout):
            raise self._refused("a newer version was saved by another holder")
        pointer = encode_pointer(self.uid, Pointer(head.epoch, head.version))
        cache.set(self.keys.head, pointer, timeout=self.timeout)
        self._forget_old(base.head, head)
        return Loaded(head, pointer)

    def _continues(self, base: Loaded, current: object) -> bool:
        """True if the pointer still leads to the head ``base`` loaded.

        It names that head, or an older one after saves that added their head
        and crashed before moving the pointer (the reader stepped over them to
        the base, whose key exists). A pointer past the base means a newer
        save; adding the next head then decides between concurrent savers.
        """
        if base.head is None or base.head.epoch == "legacy":
            return bool(current == base.condition)  # absent, the same lost pointer, the same layout-1 head
        if current is None or legacy_version(current) is not None:
            return False
        pointer = decode_pointer(self.uid, current)
        if pointer.epoch != base.head.epoch or pointer.version > base.head.version:
            return False
        if pointer.version == base.head.version:
            return True
        return bool(self._cache().has_key(self.keys.chained_head(pointer.epoch, base.head.version)))

    def _forget_old(self, base: Head | None, head: Head) -> None:
        cache = self._cache()
        if base is not None and base.epoch == "legacy":
            cache.delete_many(legacy_keys(self.keys, base.version))
        elif head.version > 2:
            cache.delete(self.keys.chained_head(head.epoch, head.version - 2))

    def _refused(self, why: str) -> StaleSessionError:
        return StaleSessionError(f"session {self.uid!r}: {why}; nothing was written")

    def touch(self, tokens: list[str]) -> None:
        if self.timeout is None:
            return
        cache = self._cache()
        for token in tokens:
            cache.touch(self.keys.document(token), timeout=2 * self.timeout)

    def get_raw(self, key: str) -> object:
        """What is stored under one of this session's keys (``keys.head``...), as Django returns it."""
        return self._cache().get(key)

    def set_raw(self, key: str, value: str | bytes) -> None:
        self._cache().set(key, value, timeout=None)

    def delete_raw(self, key: str) -> None:
        self._cache().delete(key)

    def acquire(self, lease: Lease) -> bool:
        assert self._lease is not None
        return self._lease.acquire(lease)

    def renew(self, lease: Lease) -> bool:
        assert self._lease is not None
        return self._lease.renew(lease)

    def release(self, lease: Lease) -> None:
        assert self._lease is not None
        self._lease.release(lease)
