"""The documents and indexes of the mongo backend, and which documents a reader believes.

One collection (named by the ``collection`` option, default ``triggers``)
holds two kinds of documents.

A *header* per session, ``_id`` the uid::

    {"_id": uid, "uid": uid, "active": True, "seq": 0,
     "key": "<random per header>", "version": 7, "writer": "<save token>",
     "settled": 7, "lease_token": "<token>" | None, "lease_expires": 1764000000.0,
     "lease_session": {"id": UUID} | None,   # the lock holder's logical session id
     "pending": [{"kind", "name", "record", "active", "deleted"}, ...] | None,
     "expires_at": datetime, "items_expire_at": datetime}   # the last two with session_ttl

a *tail* per header, which every save rewrites with the header's version::

    {"_id": Binary(key NUL), "uid": uid, "active": True, "seq": 2,
     "key": "<the header's key>", "version": 7, "writer": "<save token>"}

An *item* document per task config, task instance and metadata key, its
``_id`` made of the header's key, the kind and the name (:func:`item_id`)::

    {"_id": Binary(key NUL kind NUL name), "uid": uid, "seq": 1, "session": "<the header's key>",
     "kind": "task" | "instance" | "metadata", "name": name, "version": 7,
     "writer": "<save token>", "committed": True, "active": True,
     "deleted": True,                          # only for a removed metadata key
     "record": "<canonical JSON text>", "expires_at": datetime}

and, for saves without transactions too big to carry their records in the
header's ``pending``, *copies*: the same fields under an ObjectId,
``committed: False`` and ``active: False``, one per item the save writes,
believed only while that save is not settled (see :mod:`.writing`), and
deleted once it is.

Every field *name* is ours: uids, names, kwargs and metadata keys only ever
appear as *values* (``record`` is JSON text, ``_id`` bytes), so ``$``, ``.``,
empty and NUL keys round-trip and can never be read as operators or paths.
Every write addresses documents by ``_id``.

All carry the uid so that one query, through the ``uid_active_seq`` index,
finds a session's header, active items and tail together, in that order
(``seq``; see :mod:`.loading`); items carry
the header's random ``key`` so that items of an expired header whose uid was
used again are never read as the new session's.

Which documents a reader believes (:func:`current_items`): those with the
header's key and a version no newer than the header's that are *committed*:
``committed`` is true (an item document), or it is a copy written by the save
that produced the header's current version (``version == header.version`` and
``writer == header.writer``: a save flipped, perhaps not settled yet). For
each (kind, name) the believed document of the highest version wins; a
``deleted`` one is a tombstone (a metadata key removed). Copies of any other
save (in flight, refused, or abandoned by a crash) are ignored, and the next
save after a load that saw them deletes them (:func:`dead_copies`).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, IndexModel

__all__ = [
    "INDEXES",
    "KINDS",
    "KIND_INSTANCE",
    "KIND_METADATA",
    "KIND_TASK",
    "SEQ_HEADER",
    "SEQ_ITEM",
    "SEQ_TAIL",
    "TTL_INDEX",
    "Collections",
    "Header",
    "collection_names",
    "current_items",
    "dead_copies",
    "is_believed",
    "item_id",
    "tail_id",
]

KIND_TASK = "task"
KIND_INSTANCE = "instance"
KIND_METADATA = "metadata"
KINDS = (KIND_TASK, KIND_INSTANCE, KIND_METADATA)

SEQ_HEADER, SEQ_ITEM, SEQ_TAIL = 0, 1, 2
"""Where each kind of document comes in a load: the header first, the tail last."""

INDEXES = [
    # Loads: a fire asks for {uid, active: True} in seq order; a full load for {uid}.
    IndexModel([("uid", ASCENDING), ("active", ASCENDING), ("seq", ASCENDING)], name="uid_active_seq"),
]

TTL_INDEX = IndexModel([("expires_at", ASCENDING)], name="expires_at", expireAfterSeconds=0)
"""With ``session_ttl`` only: documents expire at their own ``expires_at``. (SecantusDB's TTL
monitor reads every document of a collection with a TTL index each minute, under
its global lock, so the index is not created where nothing expires.)"""


def item_id(key: str, kind: str, name: str) -> bytes:
    """The ``_id`` of an item's document: unambiguous (key and kind hold no NUL), and of
    another BSON type than a header's, so no uid can ever name an item."""
    return b"%s\x00%s\x00%s" % (key.encode("utf-8"), kind.encode("utf-8"), name.encode("utf-8"))


def tail_id(key: str) -> bytes:
    """The ``_id`` of a header's tail (no item's: it has one NUL, theirs two)."""
    return b"%s\x00" % key.encode("utf-8")


@dataclass(frozen=True)
class Collections:
    """Where the documents of one ``collection`` option live.

    Headers and items share one collection; both names are kept so that
    tools written for separate collections find them.
    """

    sessions: str
    items: str


def collection_names(collection: str) -> Collections:
    return Collections(sessions=collection, items=collection)


@dataclass(frozen=True)
class Header:
    """What a load saw of a session header; the next save builds on it."""

    key: str
    version: int | None
    writer: str | None
    settled: int | None
    items_expire_at: datetime | None = None
    lease_live: bool = False
    lease_session: Any = None
    pending: tuple[Mapping[str, Any], ...] | None = None
    """The records of the save that produced ``version``, while it settles (see :mod:`.writing`)."""

    @classmethod
    def new(cls) -> Header:
        """The header a first save creates: no version yet, a key of its own."""
        return cls(key=secrets.token_hex(16), version=None, writer=None, settled=None)

    @property
    def unsettled(self) -> bool:
        """A save without transactions was flipped but not settled (its writer died)."""
        return self.version is not None and self.settled != self.version

    def same_state(self, other: Header) -> bool:
        """True if both name the same committed state (lease fields may differ)."""
        return (self.key, self.version, self.writer, self.settled) == (
            other.key, other.version, other.writer, other.settled
        )


def is_believed(item: Mapping[str, Any], header: Header) -> bool:
    """True if ``item`` belongs to the state ``header`` names (see the module docstring)."""
    version = header.version
    if version is None or item.get("session") != header.key:
        return False
    if item.get("version", 0) > version:
        return False
    if item.get("committed") is True:
        return True
    return item.get("version") == version and item.get("writer") == header.writer


def current_items(
    items: Iterable[Mapping[str, Any]], header: Header, *, partial: bool = False
) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The winning believed document of each (kind, name); tombstones removed.

    The records a settling save carries in the header (``pending``) win over
    any document: its item documents may be rewritten only in part. For a
    ``partial`` (active) load, an instance they finish is left out.
    """
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for item in items:
        if not is_believed(item, header):
            continue
        key = (item["kind"], item["name"])
        known = latest.get(key)
        if known is None or item["version"] > known["version"]:
            latest[key] = item
    for entry in header.pending or ():
        latest[(entry["kind"], entry["name"])] = entry
    return {
        key: item for key, item in latest.items()
        if not item.get("deleted") and not (partial and key[0] == KIND_INSTANCE and not item.get("active"))
    }


def dead_copies(items: Iterable[Mapping[str, Any]], header: Header) -> list[Any]:
    """The ``_id`` of every copy among ``items`` that no save can commit any more.

    A copy of a version the header has passed, or of the header's version by
    another writer, lost (or its writer died); a copy of a newer version may
    still be in flight, and is left alone.
    """
    version = header.version
    if version is None:
        return []
    return [
        item["_id"] for item in items
        if item.get("session") == header.key and item.get("committed") is False
        and (item["version"] < version or (item["version"] == version and item.get("writer") != header.writer))
    ]
