"""The lock of a key-value store: a lease key added with a time to live.

``add()`` of the lock key with the lease's token takes the lock, and the
store's expiry ends a crashed holder's lease. Renewal and release must only
touch the key while it still holds our token. Through the primitives alone
(:class:`AddLeases`) that is a read, then a write: within that one round trip
a release could delete a lease that had just expired and been taken over.
The fenced saves (:mod:`triggers.keyvalue.chain`) still refuse anything that
would overwrite newer state; a store that can compare and delete in one step
gives its own leases (triggers-cache does, on Redis, memcached and the
database cache).

A store whose ``add()`` is not atomic across processes can only lock within
its process: :class:`ProcessLeases`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from triggers.keyvalue.codec import as_text
from triggers.keyvalue.keys import SessionKeys
from triggers.locking import LOCAL_LEASES, Lease

if TYPE_CHECKING:
    from triggers.keyvalue.store import KeyValueStore

__all__ = ["AddLeases", "ProcessLeases"]


class AddLeases:
    """The lock key through a store's ``add``, ``get``, ``touch`` and ``delete``."""

    def __init__(self, store: KeyValueStore, *, whole_seconds: bool = False) -> None:
        self.store = store
        self.whole_seconds = whole_seconds
        """The store's expiry has a granularity of one second (memcached's clock
        ticks once a second; Django's database cache rounds down)."""

    def ttl(self, lease: Lease) -> float:
        """The lock key's time to live: never shorter than the lease.

        One second more where expiry times are whole seconds, where the key
        could otherwise vanish up to a second early and let another process
        take the lock while the lease still runs.
        """
        return lease.ttl + (1 if self.whole_seconds else 0)

    def holds(self, keys: SessionKeys, lease: Lease) -> bool:
        return as_text(self.store.get(keys.lock)) == lease.token

    def take(self, keys: SessionKeys, lease: Lease) -> bool:
        # Already ours: a take whose reply was lost, tried again.
        return self.store.add(keys.lock, lease.token, self.ttl(lease)) or self.holds(keys, lease)

    def renew(self, keys: SessionKeys, lease: Lease) -> bool:
        return self.holds(keys, lease) and self.store.touch(keys.lock, self.ttl(lease))

    def release(self, keys: SessionKeys, lease: Lease) -> None:
        if self.holds(keys, lease):
            self.store.delete(keys.lock)


class ProcessLeases:
    """The process-local lease table, for a store that cannot lock across processes."""

    def __init__(self, store: KeyValueStore) -> None:
        self.store = store

    def _key(self, keys: SessionKeys) -> tuple[str, str]:
        return (self.store.describe(), keys.base)

    def take(self, keys: SessionKeys, lease: Lease) -> bool:
        return LOCAL_LEASES.try_acquire(self._key(keys), lease, lease.acquired_at)

    def renew(self, keys: SessionKeys, lease: Lease) -> bool:
        return LOCAL_LEASES.renew(self._key(keys), lease)

    def release(self, keys: SessionKeys, lease: Lease) -> None:
        LOCAL_LEASES.release(self._key(keys), lease.token)
