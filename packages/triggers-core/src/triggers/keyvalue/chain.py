"""A chain of immutable heads: atomic saves on any store with an atomic ``add()``.

``add`` ("store only if the key is absent") is all a key-value store needs
to refuse a stale save; a chain of immutable heads is built on it:

* each head is a key of its own, ``…:h:<epoch>:<version>``, written once;
  the head key holds a pointer to the latest one.
* a save runs under the lock (such a store cannot check the lock and write
  in one step, so it takes no optimistic saves). It checks that the lock is
  still ours and that the pointer still leads to the head it loaded, writes
  the history documents, then *adds* the next head: only one writer can add a
  given version, so a holder whose lease was taken over and who got past the
  check still writes nothing. Then it moves the pointer and deletes the head
  before the previous one (readers may still be reading the previous one).
* readers follow the pointer and step forward over heads that a save added
  before it died, without moving the pointer.
* a pointer whose head is gone (evicted, or culled) is a lost session: it
  loads as an empty one, and the next save starts a new epoch, so nothing of
  the old one is read again.

An unfenced store (one whose ``add`` checks, then writes, so two processes
can both succeed, as Django's file cache does) uses the same layout without
the checks; its lock can then only be process-local.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from triggers.errors import StaleSessionError
from triggers.keyvalue.codec import (
    Head,
    Pointer,
    as_text,
    corrupt,
    decode_head,
    decode_pointer,
    encode_pointer,
)
from triggers.keyvalue.keys import SessionKeys
from triggers.keyvalue.layout import Loaded, Plan
from triggers.locking import Lease

if TYPE_CHECKING:
    from triggers.keyvalue.store import KeyValueStore

__all__ = ["ChainHeads"]

_STEPS = 8
"""Heads read at once when stepping forward from the pointer."""


class ChainHeads:
    """The heads of a :class:`~triggers.keyvalue.KeyValueStore`, through its primitives only."""

    def __init__(self, store: KeyValueStore, *, fenced: bool = True) -> None:
        self.store = store
        self.fenced = fenced
        """False: an unfenced store, whose saves only the (process-local) lock keeps apart."""

    def head_key(self, keys: SessionKeys, head: Head) -> str:
        return keys.chained_head(head.epoch, head.version)

    def load(self, uid: str, keys: SessionKeys) -> Loaded:
        store = self.store
        raw = store.get(keys.head)
        for _ in range(3):
            if raw is None:
                return Loaded(None, None)
            if store.is_older_layout(raw):
                return Loaded(store.load_older_layout(uid, keys, raw), raw)
            head = self._newest(uid, keys, decode_pointer(uid, raw))
            if head is not None:
                return Loaded(head, raw)
            again = store.get(keys.head)  # a newer save may have deleted it: look again
            if again == raw:
                break
            raw = again
        return Loaded(None, raw)  # the pointer's head is gone: a lost session

    def _newest(self, uid: str, keys: SessionKeys, pointer: Pointer) -> Head | None:
        """The newest head at or after the pointer's, or ``None`` if there is none."""
        newest, start = None, pointer.version
        while True:
            names = {keys.chained_head(pointer.epoch, v): v for v in range(start, start + _STEPS)}
            found = self.store.get_many(list(names))
            if not found:
                return newest
            name = max(found, key=names.__getitem__)
            newest = decode_head(uid, found[name])
            if newest is None or (newest.epoch, newest.version) != (pointer.epoch, names[name]):
                raise corrupt(uid, f"another head where head {names[name]} belongs")
            if names[name] < start + _STEPS - 1:
                return newest
            start += _STEPS

    def write(self, uid: str, keys: SessionKeys, base: Loaded, plan: Plan, lease: Lease | None) -> Loaded:
        store, head = self.store, plan.head
        if self.fenced:
            found = store.get_many([keys.lock, keys.head])
            if lease is None or as_text(found.get(keys.lock)) != lease.token:
                raise StaleSessionError.lease_taken_over(uid)
            refusal = self._moved(uid, keys, base, found.get(keys.head))
            if refusal is not None:
                raise refusal
        if plan.documents:
            store.set_many({keys.document(t): text for t, text in plan.documents.items()}, store.history_ttl)
        key = keys.chained_head(head.epoch, head.version)
        if not self.fenced:
            store.set(key, plan.text, store.session_ttl)
        elif not store.add(key, plan.text, store.session_ttl):  # another saver added it first
            if base.head is None:
                raise StaleSessionError.created_elsewhere(uid)
            raise StaleSessionError.version_moved(uid, base.head.version, head.version)
        pointer = encode_pointer(uid, Pointer(head.epoch, head.version))
        store.set(keys.head, pointer, store.session_ttl)
        if base.head is not None and base.head.epoch == head.epoch and head.version > 2:
            store.delete(keys.chained_head(head.epoch, head.version - 2))
        return Loaded(head, pointer)

    def _moved(self, uid: str, keys: SessionKeys, base: Loaded, current: object) -> StaleSessionError | None:
        """Why the pointer no longer leads to the head ``base`` loaded; ``None`` if it does.

        It leads there when it names that head, or an older one after saves
        that added their head and died before moving the pointer (the reader
        stepped over them to the base, whose key exists). A pointer past the
        base means a newer save; adding the next head decides between
        concurrent savers.
        """
        if base.head is None or base.head.is_older_layout:
            if current == base.condition:  # absent, the same lost pointer, the same older-layout head
                return None
            if base.head is None:
                return StaleSessionError.created_elsewhere(uid)
            return StaleSessionError.version_moved(uid, base.head.version, "a newer one")
        if current is None or self.store.is_older_layout(current):
            return StaleSessionError.version_moved(uid, base.head.version, None)
        pointer = decode_pointer(uid, current)
        if pointer.epoch != base.head.epoch or pointer.version > base.head.version:
            return StaleSessionError.version_moved(uid, base.head.version, pointer.version)
        if pointer.version == base.head.version:
            return None
        if self.store.get(keys.chained_head(pointer.epoch, base.head.version)) is not None:
            return None
        return StaleSessionError.version_moved(uid, base.head.version, pointer.version)

