"""memcached (Django's ``PyMemcacheCache``): compare-and-set on the head.

The session's keys are read and written through Django's API
(:class:`~triggers_cache.primitives.DjangoPrimitives`); this module is what
pymemcache does better than the key-value primitives, through the client
Django hands out, under the keys Django makes and with the expiry times
Django would send (over 30 days becomes a date, as memcached wants):

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
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from triggers.errors import SessionLimitError, StaleSessionError
from triggers.keyvalue.codec import PLACEHOLDER, Head, decode_head
from triggers.keyvalue.keys import SessionKeys
from triggers.keyvalue.layout import Loaded, Plan
from triggers.locking import Lease
from triggers_cache.primitives import NotStored

if TYPE_CHECKING:
    from triggers_cache.store import CacheStore

__all__ = ["MemcachedSessions"]


@dataclass(frozen=True)
class _Condition:
    cas: bytes | None
    """The head's CAS unique at the load; ``None``: no head, or not known since our own save."""
    holder: object
    """The lock key's value at the load (a token), ``None`` when free."""


class MemcachedSessions:
    """A session's head and lock in memcached, through the pymemcache client of a Django cache."""

    def __init__(self, store: CacheStore, *, item_bytes: int) -> None:
        self.store = store
        self.item_bytes = item_bytes
        """Largest value stored: memcached's item size (``-I``), key and header included."""

    def client(self) -> Any:
        return self.store.cache._cache

    def key(self, key: str) -> str:
        name: str = self.store.cache.make_and_validate_key(key)
        return name

    def _expire(self, seconds: float | None) -> int:
        expire: int = self.store.cache.get_backend_timeout(None if seconds is None else math.ceil(seconds))
        return expire

    def head_key(self, keys: SessionKeys, head: Head) -> str:
        return keys.head

    def _gets(self, keys: SessionKeys) -> tuple[object, _Condition]:
        """The head and the lock's holder, in one request."""
        head_key, lock_key = self.key(keys.head), self.key(keys.lock)
        found = self.client().gets_many([head_key, lock_key])
        raw, cas = found.get(head_key, (None, None))
        return raw, _Condition(cas, found.get(lock_key, (None, None))[0])

    def load(self, uid: str, keys: SessionKeys) -> Loaded:
        raw, condition = self._gets(keys)
        if raw is None:
            return Loaded(None, condition)
        if self.store.is_older_layout(raw):
            return Loaded(self.store.load_older_layout(uid, keys, raw), condition)
        return Loaded(decode_head(uid, raw), condition)

    def write(self, uid: str, keys: SessionKeys, base: Loaded, plan: Plan, lease: Lease | None) -> Loaded:
        self._check_size(uid, plan)
        condition: _Condition = base.condition
        if base.head is not None and condition.cas is None:
            condition = self._read_again(uid, keys, base.head)
        if lease is None and condition.holder is not None:
            raise StaleSessionError.leased(uid)
        if lease is not None and condition.holder != lease.token:
            raise StaleSessionError.lease_taken_over(uid)
        client = self.client()
        if plan.documents:
            documents = {self.key(keys.document(t)): text for t, text in plan.documents.items()}
            failed = client.set_many(documents, expire=self._expire(self.store.history_ttl))
            if failed:
                raise NotStored(f"memcached did not store {len(failed)} history document(s)")
        head_key, expire = self.key(keys.head), self._expire(self.store.session_ttl)
        if condition.cas is None:
            stored = client.add(head_key, plan.text, expire=expire)
        else:
            stored = client.cas(head_key, plan.text, condition.cas, expire=expire)
        if not stored:
            if base.head is None:
                raise StaleSessionError.created_elsewhere(uid)
            raise StaleSessionError.version_moved(uid, base.head.version, "a newer one")
        return Loaded(plan.head, _Condition(None, condition.holder))

    def _read_again(self, uid: str, keys: SessionKeys, head: Head) -> _Condition:
        """The head's CAS unique now, after our own save (which memcached does not return)."""
        raw, condition = self._gets(keys)
        stored = None if raw is None else decode_head(uid, raw)
        if stored is None or (stored.epoch, stored.version) != (head.epoch, head.version):
            raise StaleSessionError.version_moved(uid, head.version, stored and stored.version)
        return condition

    def _check_size(self, uid: str, plan: Plan) -> None:
        size = len(plan.text.encode("utf-8"))
        if size > self.item_bytes:
            raise SessionLimitError(
                f"session {uid!r}: its head (task configurations, metadata and "
                f"{len(plan.head.instances)} unfinished instances) takes {size} bytes; memcached "
                f"stores at most {self.item_bytes} in one item. Nothing was written"
            )

    # -- the lock ------------------------------------------------------------------

    def _lock_expire(self, lease: Lease) -> int:
        """Whole seconds, one more than the lease: memcached's clock ticks once a second."""
        return max(1, math.ceil(lease.ttl)) + 1

    def take(self, keys: SessionKeys, lease: Lease) -> bool:
        client = self.client()
        if not client.add(self.key(keys.lock), lease.token, expire=self._lock_expire(lease)):
            return False
        try:
            self._bump(client, keys)
        except BaseException:
            self.release(keys, lease)
            raise
        return True

    def _bump(self, client: Any, keys: SessionKeys) -> None:
        """Give the head a new CAS unique, so that writers who loaded before the lock refuse.

        Appending nothing stores the same bytes under a new unique; where
        there is no head yet, a placeholder takes its place.
        """
        head_key = self.key(keys.head)
        for _ in range(5):
            if client.append(head_key, ""):
                return
            if client.add(head_key, PLACEHOLDER, expire=self._expire(self.store.session_ttl)):
                return
        raise NotStored("the head kept appearing and disappearing while the lock was taken")

    def renew(self, keys: SessionKeys, lease: Lease) -> bool:
        client, lock_key = self.client(), self.key(keys.lock)
        holder, cas = client.gets(lock_key)
        if holder != lease.token:
            return False
        return bool(client.cas(lock_key, lease.token, cas, expire=self._lock_expire(lease)))

    def release(self, keys: SessionKeys, lease: Lease) -> None:
        client, lock_key = self.client(), self.key(keys.lock)
        holder, cas = client.gets(lock_key)
        if holder == lease.token:
            client.cas(lock_key, lease.token, cas, expire=-1)  # expired at once: deleted
