"""memcached (Django's ``PyMemcacheCache``): compare-and-set on the head.

Django's ``PyMemcacheCache`` hands out its pymemcache client; this store
uses it under the keys Django makes, with the expiry times Django would send
(over 30 days becomes a date, as memcached wants).

* **Load**: ``gets`` of the head and the lock in one request (one round trip):
  the head, its CAS unique, and who holds the lock.
* **Save**: the new history documents by ``set_many`` (random names, so no
  other writer ever stores them; one round trip, and only when instances
  finished), then ``cas`` of the head with the unique from the load (``add``
  where there was no head). memcached refuses the ``cas`` if anything stored
  the head since the load, so a save from an older version writes nothing
  (documents it stored first are never named by any head: memcached evicts
  them).
* **No live lease**: an optimistic save is refused at once when its load saw
  the lock held. A writer that loaded *before* the lock was taken is stopped
  by the holder: right after adding the lock key, it appends nothing to the
  head (memcached gives it a new CAS unique, the bytes stay the same), or
  adds a placeholder where there is no head yet, so every such writer's
  ``cas`` fails. The check and the write are thus one atomic step in effect:
  no optimistic write lands after the holder read the session.
* **Lock**: ``add`` of the lock key with our token (memcached's clock ends
  it); renewal and release by ``gets`` and ``cas`` (a release stores with an
  expiry in the past, memcached's compare-and-delete), so a release never
  deletes a lease another holder took over.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from triggers.errors import SessionLimitError, StaleSessionError
from triggers.locking import Lease
from triggers_cache.codec import PLACEHOLDER, Head, decode_head, legacy_version
from triggers_cache.keys import SessionKeys
from triggers_cache.layout import Loaded, Plan, legacy_keys, load_legacy

__all__ = ["ITEM_LIMIT", "MemcachedStore"]

ITEM_LIMIT = 1_000_000
"""Largest value stored (memcached's default item size is 1 MiB, key and header included)."""

_BATCH = 200
"""Keys per multi-get: memcached reads a request line whole, so keep it a few KB."""


@dataclass(frozen=True)
class _Condition:
    cas: bytes | None
    """The head's CAS unique at the load; ``None``: no head, or not known since our own save."""
    holder: object
    """The lock key's value at the load (a token), ``None`` when free."""


class MemcachedStore:
    """A session's keys in memcached, through the pymemcache client of a Django cache."""

    def __init__(self, cache: Callable[[], Any], keys: SessionKeys, uid: str, timeout: float | None) -> None:
        self._cache = cache
        self.keys = keys
        self.uid = uid
        self.timeout = timeout

    def client(self) -> Any:
        return self._cache()._cache

    def key(self, key: str) -> str:
        name: str = self._cache().make_and_validate_key(key)
        return name

    def _expire(self, seconds: float | None) -> int:
        expire: int = self._cache().get_backend_timeout(seconds)
        return expire

    def load(self) -> Loaded:
        head_key, lock_key = self.key(self.keys.head), self.key(self.keys.lock)
        found = self.client().gets_many([head_key, lock_key])
        raw, cas = found.get(head_key, (None, None))
        condition = _Condition(cas, found.get(lock_key, (None, None))[0])
        if raw is None:
            return Loaded(None, condition)
        version = legacy_version(raw)
        if version is not None:
            return Loaded(load_legacy(self.uid, self.keys, version, self._get_many), condition)
        return Loaded(decode_head(self.uid, raw), condition)

    def _get_many(self, keys: list[str]) -> Mapping[str, object]:
        names = {self.key(key): key for key in keys}
        found: dict[str, object] = {}
        batch = list(names)
        for start in range(0, len(batch), _BATCH):
            for name, raw in self.client().get_many(batch[start:start + _BATCH]).items():
                found[names[name]] = raw
        return found

    def fetch(self, tokens: list[str]) -> Mapping[str, object]:
        found = self._get_many([self.keys.document(token) for token in tokens])
        return {token: found[self.keys.document(token)] for token in tokens if self.keys.document(token) in found}

    def write(self, base: Loaded, plan: Plan, lease: Lease | None) -> Loaded:
        self._check_sizes(plan)
        condition: _Condition = base.condition
        if base.head is not None and condition.cas is None:
            condition = self._read_again(base.head)
        if lease is None and condition.holder is not None:
            raise self._refused("another holder has the session locked")
        if lease is not None and condition.holder != lease.token:
            raise self._refused("the lease was taken over by another holder")
        client = self.client()
        if plan.documents:
            documents = {self.key(self.keys.document(t)): text for t, text in plan.documents.items()}
            failed = client.set_many(documents, expire=self._history_expire())
            if failed:
                raise RuntimeError(f"memcached did not store {len(failed)} history document(s)")
        head_key, expire = self.key(self.keys.head), self._expire(self.timeout)
        if condition.cas is None:
            stored = client.add(head_key, plan.text, expire=expire)
        else:
            stored = client.cas(head_key, plan.text, condition.cas, expire=expire)
        if not stored:
            raise self._refused("a newer version was saved by another writer")
        if base.head is not None and base.head.epoch == "legacy":
            client.delete_many([self.key(key) for key in legacy_keys(self.keys, base.head.version)])
        return Loaded(plan.head, _Condition(None, condition.holder))

    def _read_again(self, head: Head) -> _Condition:
        """The head's CAS unique now, after our own save (which memcached does not return)."""
        head_key, lock_key = self.key(self.keys.head), self.key(self.keys.lock)
        found = self.client().gets_many([head_key, lock_key])
        raw, cas = found.get(head_key, (None, None))
        stored = None if raw is None else decode_head(self.uid, raw)
        if stored is None or (stored.epoch, stored.version) != (head.epoch, head.version):
            raise self._refused("a newer version was saved by another writer")
        return _Condition(cas, found.get(lock_key, (None, None))[0])

    def _check_sizes(self, plan: Plan) -> None:
        size = len(plan.text.encode("utf-8"))
        if size > ITEM_LIMIT:
            raise SessionLimitError(
                f"session {self.uid!r}: its head (task configurations, metadata and "
                f"{len(plan.head.instances)} unfinished instances) takes {size} bytes; memcached "
                f"stores at most {ITEM_LIMIT} in one item. Nothing was written"
            )

    def _refused(self, why: str) -> StaleSessionError:
        return StaleSessionError(f"session {self.uid!r}: {why}; nothing was written")

    def _history_expire(self) -> int:
        return self._expire(None if self.timeout is None else 2 * self.timeout)

    def touch(self, tokens: list[str]) -> None:
        if self.timeout is None:
            return
        client, expire = self.client(), self._history_expire()
        for token in tokens:
            client.touch(self.key(self.keys.document(token)), expire=expire, noreply=True)

    # -- raw access, for operators and tests --------------------------------------

    def get_raw(self, key: str) -> object:
        """What is stored under one of this session's keys (``keys.head``...), as stored."""
        return self.client().get(self.key(key))

    def set_raw(self, key: str, value: str | bytes) -> None:
        self.client().set(self.key(key), value)

    def delete_raw(self, key: str) -> None:
        self.client().delete(self.key(key))

    # -- the lock ------------------------------------------------------------------

    def _lock_expire(self, lease: Lease) -> int:
        """Whole seconds, one more than the lease: memcached's clock ticks once a second."""
        return max(1, math.ceil(lease.ttl)) + 1

    def acquire(self, lease: Lease) -> bool:
        client = self.client()
        if not client.add(self.key(self.keys.lock), lease.token, expire=self._lock_expire(lease)):
            return False
        try:
            self._bump(client)
        except BaseException:
            self.release(lease)
            raise
        return True

    def _bump(self, client: Any) -> None:
        """Give the head a new CAS unique, so that writers who loaded before the lock refuse.

        Appending nothing stores the same bytes under a new unique; where
        there is no head yet, a placeholder takes its place.
        """
        head_key = self.key(self.keys.head)
        for _ in range(5):
            if client.append(head_key, ""):
                return
            if client.add(head_key, PLACEHOLDER, expire=self._expire(self.timeout)):
                return
        raise RuntimeError("the head kept appearing and disappearing while the lock was taken")

    def renew(self, lease: Lease) -> bool:
        client, lock_key = self.client(), self.key(self.keys.lock)
        holder, cas = client.gets(lock_key)
        if holder != lease.token:
            return False
        return bool(client.cas(lock_key, lease.token, cas, expire=self._lock_expire(lease)))

    def release(self, lease: Lease) -> None:
        client, lock_key = self.client(), self.key(self.keys.lock)
        holder, cas = client.gets(lock_key)
        if holder == lease.token:
            client.cas(lock_key, lease.token, cas, expire=-1)  # expired at once: deleted
