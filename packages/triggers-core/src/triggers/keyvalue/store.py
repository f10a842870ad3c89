"""``KeyValueStore``: a whole backend from six primitives of a key-value store.

A subclass says how to ``get``, ``get_many``, ``add`` (store only if the key is
absent, atomically), ``set``, ``touch`` and ``delete`` keys, each value a
``str`` and each time to live in seconds (``None``: no expiry). Everything else
is built on them, here and in the modules this package holds:

* the layout (:mod:`triggers.keyvalue.layout`): a small head holding what a
  fire needs, finished history written once in segments and index documents,
  every document carrying the session's epoch, so a session that lost keys
  (evicted, expired) never shows old state again;
* atomic, fenced saves: a chain of immutable heads built on ``add``
  (:mod:`triggers.keyvalue.chain`); a store that can do better (a script on
  Redis, compare-and-set on memcached) assigns its own :class:`HeadKeeping`;
* leases: a lock key added with the lease's time to live
  (:mod:`triggers.keyvalue.leases`), or the store's own :class:`Leasing`;
* sessions expiring ``session_ttl`` seconds after their last save, history
  twice as long, extended by the one rule of :func:`triggers.stores.expiry_due`.

A save rewrites the head, so it must start from the head its session object
loaded (and the store's condition for its conditional write):
:class:`KeyValueStorageBackend` keeps that per session object and hands it
back with each save.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Protocol

from triggers.capabilities import Capabilities
from triggers.errors import StaleSessionError
from triggers.keyvalue.chain import ChainHeads
from triggers.keyvalue.codec import Head
from triggers.keyvalue.keys import SessionKeys, checked_prefix
from triggers.keyvalue.layout import (
    Loaded,
    Plan,
    history_tokens,
    plan_save,
    read_history,
    stored_session,
    wants_history,
)
from triggers.keyvalue.leases import AddLeases
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession
from triggers.stores import Store, StoreStorageBackend, validated_session_ttl

__all__ = ["HeadKeeping", "KeyValueStorageBackend", "KeyValueStore", "Leasing"]


class HeadKeeping(Protocol):
    """How a store reads a session's head and replaces it atomically, fenced."""

    def head_key(self, keys: SessionKeys, head: Head) -> str:
        """The key ``head`` is stored under."""
        ...

    def load(self, uid: str, keys: SessionKeys) -> Loaded:
        """The latest head (``None``: no session) and the condition for the next write."""
        ...

    def write(self, uid: str, keys: SessionKeys, base: Loaded, plan: Plan, lease: Lease | None) -> Loaded:
        """Write ``plan`` if the head is still ``base`` and the lock is ``lease``'s (for
        ``None``: free), or raise :class:`~triggers.errors.StaleSessionError`."""
        ...


class Leasing(Protocol):
    """A store's session lock: take, renew and release a lease on ``keys.lock``."""

    def take(self, keys: SessionKeys, lease: Lease) -> bool: ...

    def renew(self, keys: SessionKeys, lease: Lease) -> bool: ...

    def release(self, keys: SessionKeys, lease: Lease) -> None: ...


class KeyValueStore(Store):
    """A store of keys and text values; subclass it and implement the primitives.

    Options: ``key_prefix`` (default ``"triggers"``; 1-64 letters, digits,
    ``_``, ``.`` or ``-``) starts every key, and ``session_ttl`` (default
    ``None``, never) is how long a session lives after its last save.

    The capabilities claimed are those of a shared store whose ``add`` is
    atomic and whose keys expire by its own clock; narrow them (assign
    ``capabilities``) where a store does less.
    """

    capabilities = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,  # the lock key expires by the store's clock
        partial_loads=True,
        ttl=True,
    )

    def __init__(self, *, key_prefix: str = "triggers", session_ttl: float | None = None, **options: Any) -> None:
        super().__init__(**options)
        self.key_prefix = checked_prefix(key_prefix)
        self.session_ttl = validated_session_ttl(session_ttl)
        self.heads: HeadKeeping = ChainHeads(self)
        self.leases: Leasing = AddLeases(self)

    @property
    def history_ttl(self) -> float | None:
        """History lives twice as long as the head, so it never expires first."""
        return None if self.session_ttl is None else 2 * self.session_ttl

    def keys_for(self, uid: str) -> SessionKeys:
        return SessionKeys.for_uid(self.key_prefix, uid)

    # -- the primitives a subclass implements ------------------------------------

    def get(self, key: str) -> object | None:
        """The value under ``key`` (``str``, or the client's bytes), ``None`` if absent."""
        raise NotImplementedError(f"{type(self).__name__} must implement get()")

    def get_many(self, keys: Sequence[str]) -> Mapping[str, object]:
        """The values under ``keys``, in one round trip where the store can; absent keys left out."""
        raise NotImplementedError(f"{type(self).__name__} must implement get_many()")

    def add(self, key: str, value: str, ttl: float | None) -> bool:
        """Store ``value`` only if ``key`` is absent, atomically; True if stored."""
        raise NotImplementedError(f"{type(self).__name__} must implement add()")

    def set(self, key: str, value: str, ttl: float | None) -> None:
        """Store ``value`` under ``key``, whatever was there."""
        raise NotImplementedError(f"{type(self).__name__} must implement set()")

    def touch(self, key: str, ttl: float | None) -> bool:
        """Give ``key`` a new time to live; False if it is absent."""
        raise NotImplementedError(f"{type(self).__name__} must implement touch()")

    def delete(self, *keys: str) -> None:
        """Delete ``keys`` (absent ones are no error)."""
        raise NotImplementedError(f"{type(self).__name__} must implement delete()")

    def set_many(self, values: Mapping[str, str], ttl: float | None) -> None:
        """Store every value; override where the store does it in one round trip."""
        for key, value in values.items():
            self.set(key, value, ttl)

    def touch_many(self, keys: Sequence[str], ttl: float | None) -> None:
        """Give every key a new time to live; override where the store does it in one round trip."""
        for key in keys:
            self.touch(key, ttl)

    # -- sessions stored in an older layout (none by default) ---------------------

    def is_older_layout(self, raw: object) -> bool:
        """True if ``raw``, found under a head key, is a session of an older layout."""
        return False

    def load_older_layout(self, uid: str, keys: SessionKeys, raw: object) -> Head | None:
        """That session as a head (epoch :data:`~triggers.keyvalue.codec.OLDER_LAYOUT`,
        its finished instances ``unsegmented``, its keys ``leftovers``), converted by
        its next save; ``None`` if its documents are gone."""
        raise NotImplementedError(f"{type(self).__name__} reads no older layout")

    # -- session operations --------------------------------------------------------

    def fetch(self, keys: SessionKeys, tokens: list[str]) -> Mapping[str, object]:
        """History documents by token (absent ones left out)."""
        names = {keys.document(token): token for token in tokens}
        return {names[name]: raw for name, raw in self.get_many(list(names)).items()}

    def load_session(self, uid: str, scope: LoadScope) -> tuple[StoredSession, Loaded]:
        """The session for ``scope``, and the head it was read from (for the next save)."""
        keys = self.keys_for(uid)
        loaded = self.heads.load(uid, keys)
        history = None
        if loaded.head is not None and wants_history(loaded.head, scope):
            history = read_history(uid, loaded.head, functools.partial(self.fetch, keys))
        return stored_session(loaded.head, history), loaded

    def write_session(self, uid: str, changes: SessionChanges, base: Loaded) -> Loaded:
        """Save ``changes`` over the head ``base`` (as loaded); the head now stored."""
        loaded = None if base.head is None else base.head.version
        if loaded != changes.base_version:
            raise StaleSessionError.version_moved(uid, changes.base_version, loaded)
        keys = self.keys_for(uid)
        now = time.time() if changes.written_at is None else changes.written_at
        plan = plan_save(uid, base.head, changes, now=now, session_ttl=self.session_ttl)
        if plan.refresh and base.head is not None:
            tokens = history_tokens(uid, base.head, functools.partial(self.fetch, keys))
            self.touch_many([keys.document(token) for token in tokens], self.history_ttl)
        written = self.heads.write(uid, keys, base, plan, changes.lease)
        if base.head is not None and base.head.leftovers:
            self.delete(*base.head.leftovers)  # converted: the older layout's keys go
        return written

    def load(self, uid: str, scope: LoadScope) -> StoredSession:
        return self.load_session(uid, scope)[0]

    def write(self, uid: str, changes: SessionChanges) -> None:
        """Save ``changes`` over the head as stored now (one more read than
        :class:`KeyValueStorageBackend` makes, which keeps the head it loaded)."""
        self.write_session(uid, changes, self.heads.load(uid, self.keys_for(uid)))

    def take_lease(self, uid: str, lease: Lease) -> bool:
        return self.leases.take(self.keys_for(uid), lease)

    def renew_lease(self, uid: str, lease: Lease) -> bool:
        return self.leases.renew(self.keys_for(uid), lease)

    def release_lease(self, uid: str, lease: Lease) -> None:
        self.leases.release(self.keys_for(uid), lease)


class KeyValueStorageBackend(StoreStorageBackend):
    """A backend on a :class:`KeyValueStore`: set ``store_class`` (and ``capabilities``).

    It keeps the head its session loaded last, so that a save starts from
    exactly what this object read, with the store's condition for it.
    """

    store_class: ClassVar[type[KeyValueStore]]
    store: KeyValueStore

    def __init__(self, uid: str, **options: Any) -> None:
        super().__init__(uid, **options)
        self._base = Loaded(None)

    def _load_session(self, scope: LoadScope) -> StoredSession:
        stored, self._base = self.store.load_session(self.uid, scope)
        return stored

    def _save_changes(self, changes: SessionChanges) -> None:
        self._base = self.store.write_session(self.uid, changes, self._base)
