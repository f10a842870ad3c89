"""Loading a session: its header and items in one round trip, never two versions mixed.

One ``aggregate`` reads, in this order, the header, the session's items
(``{uid, active: True}`` through the ``uid_active`` index for a fire,
``{uid}`` for everything) and the header again (``$unionWith`` runs each
part after the one before it). A query that reads many documents is not one
snapshot on MongoDB (it may yield between documents), so the header is read
at both ends: if the two agree, no save was flipped while the items were
read, and the items are exactly the state that header names (saves change no
document a reader of the current version needs before they flip the
header; see :mod:`.writing`). If they differ, the load starts over.

A header left *unsettled* by a save without transactions (flipped, but its
item documents not yet rewritten: the server died inside its command, or
the load met it in the middle) is believed through that save's copies,
which are inactive; for such a header the load reads every item of the
session instead of only the active ones.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.collection import Collection

from triggers.errors import CorruptSessionError, StorageError
from triggers.storage import LoadScope, StoredSession
from triggers_mongo import layout
from triggers_mongo.layout import Header

__all__ = ["LEASE_EXPIRES", "NOW", "Loaded", "read", "read_header", "stored_session"]

Document = dict[str, Any]

NOW: Document = {"$divide": [{"$toLong": "$$NOW"}, 1000]}
"""The server's clock in seconds since the epoch, inside an aggregation or pipeline update.

Leases are written (``$$NOW + ttl``) and judged (``lease_expires <= $$NOW``) on
the server's clock, so a process whose clock is wrong cannot take a live lease
nor write one that others take at once; its own clock only measures how long
it may keep working.
"""

LEASE_EXPIRES: Document = {"$ifNull": ["$lease_expires", 0]}

_ATTEMPTS = 20
_BATCH = 100_000
"""Documents asked for in the first reply: a fire's load is one round trip
(the server still caps a reply at 16 MB)."""

_HEADER_FIELDS = {
    "key": 1, "version": 1, "writer": 1, "settled": 1, "items_expire_at": 1,
    "lease_session": 1, "live": {"$gt": [LEASE_EXPIRES, NOW]},
}
_ITEM_FIELDS = {"uid": 0, "expires_at": 0}


@dataclass(frozen=True)
class Loaded:
    """One consistent read: the header (``None``: no session) and its items."""

    header: Header | None
    items: list[Document]
    complete: bool


def read(collection: Collection[Document], uid: str, scope: LoadScope) -> Loaded:
    """The header and items of ``uid`` as of one committed version (see the module docstring)."""
    full = scope >= LoadScope.FULL
    for _ in range(_ATTEMPTS):
        first, items, last = _read_once(collection, uid, full=full)
        if first is None or last is None:
            if first is None and last is None:
                return Loaded(None, [], complete=True)
            continue  # created or removed meanwhile
        if not first.same_state(last):
            continue
        if last.unsettled and not full:
            full = True
            continue
        return Loaded(last, items, complete=full)
    raise StorageError(
        f"could not load session {uid!r}: it changed during each of {_ATTEMPTS} attempts"
    )


def _read_once(
    collection: Collection[Document], uid: str, *, full: bool
) -> tuple[Header | None, list[Document], Header | None]:
    match: Document = {"uid": uid} if full else {"uid": uid, "active": True}
    pipeline: list[Document] = [
        {"$match": {"_id": uid}},
        {"$project": _HEADER_FIELDS},
        {"$unionWith": {"coll": collection.name, "pipeline": [
            {"$match": match}, {"$project": _ITEM_FIELDS},
        ]}},
        {"$unionWith": {"coll": collection.name, "pipeline": [
            {"$match": {"_id": uid}}, {"$project": {**_HEADER_FIELDS, "again": {"$literal": True}}},
        ]}},
    ]
    found = list(collection.aggregate(pipeline, batchSize=_BATCH))
    first = _header(found[0]) if found and "key" in found[0] and "again" not in found[0] else None
    last = _header(found[-1]) if found and found[-1].get("again") is True else None
    items = [document for document in found if "key" not in document]
    return first, items, last


def _header(document: Mapping[str, Any]) -> Header:
    expires = document.get("items_expire_at")
    if isinstance(expires, datetime) and expires.tzinfo is None:
        expires = expires.replace(tzinfo=UTC)
    return Header(
        key=document["key"],
        version=document.get("version"),
        writer=document.get("writer"),
        settled=document.get("settled"),
        items_expire_at=expires,
        lease_live=document.get("live") is True,
        lease_session=document.get("lease_session"),
    )


def stored_session(uid: str, loaded: Loaded) -> StoredSession:
    """The believed items of a load, decoded, as core wants them."""
    header = loaded.header
    if header is None or header.version is None:
        return StoredSession(configs={}, instances={}, metadata={}, version=None)
    parts: dict[str, dict[str, Any]] = {kind: {} for kind in layout.KINDS}
    for (kind, name), item in layout.current_items(loaded.items, header).items():
        parts[kind][name] = _decoded(uid, kind, name, item.get("record"))
    return StoredSession(
        configs=parts[layout.KIND_TASK],
        instances=parts[layout.KIND_INSTANCE],
        metadata=parts[layout.KIND_METADATA],
        version=header.version,
        complete=loaded.complete,
    )


def _decoded(uid: str, kind: str, name: str, record: object) -> Any:
    """A stored item's record, or CorruptSessionError naming the uid and the item."""
    try:
        if not isinstance(record, str):
            raise TypeError(f"the record is a {type(record).__name__}, not JSON text")
        return json.loads(record)
    except (ValueError, TypeError) as error:
        raise CorruptSessionError(
            f"session {uid!r}: the stored {kind} {name[:80]!r} could not be decoded "
            f"({error}); it was left untouched"
        ) from error


def read_header(collection: Collection[Document], uid: str) -> Header | None:
    """The header alone, with whether its lease is live on the server's clock (one round trip)."""
    found = list(collection.aggregate([{"$match": {"_id": uid}}, {"$project": _HEADER_FIELDS}]))
    return _header(found[0]) if found else None
