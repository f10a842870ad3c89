"""Loading a session: a fire's load is one query, and never mixes two versions.

A fire's load (``LoadScope.ACTIVE``) is one ``find({uid, active: True})`` in
``seq`` order through the ``uid_active_seq`` index: the header first, the
active items, and the header's *tail* last (:mod:`.layout`). A query that
reads many documents is not one snapshot on MongoDB (it may yield between
documents, and each document is read as it is reached in the index), so
the version is read at both ends: every save rewrites the tail with the
header's version and writer, after its flip and before any item document
changes (:mod:`.writing`). If header and tail agree, no save changed an
item while the query read them; if not, the load starts over.

A full load reads the header, every item of the session, and the header
again (three round trips), and starts over if the header moved.

A header left *unsettled* by a save without transactions (flipped, its item
documents not all rewritten yet: the load met it in the middle, or the
server died inside its command) carries that save's records (``pending``),
which win over the item documents. A save too big for that wrote copies
instead, which are inactive: a header found unsettled twice without
``pending`` makes a fire's load a full load.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo.collection import Collection

from triggers.errors import CorruptSessionError, StorageError
from triggers.locking import backoff_delays
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

_HEADER_FIELDS = (
    "key", "version", "writer", "settled", "items_expire_at", "lease_session", "pending",
)
_SKIPPED: Document = {"uid": 0, "expires_at": 0, "lease_token": 0, "lease_expires": 0}


@dataclass(frozen=True)
class Loaded:
    """One consistent read: the header (``None``: no session) and its items."""

    header: Header | None
    items: list[Document]
    complete: bool


def read(collection: Collection[Document], uid: str, scope: LoadScope) -> Loaded:
    """The header and items of ``uid`` as of one committed version (see the module docstring).

    A read that met a save starts over after a short, growing, jittered wait.
    A header found unsettled twice at the same version is not a save in
    progress but one whose command stopped: the load becomes a full load.
    """
    delays = backoff_delays(first_delay=0.001, max_delay=0.05)
    unsettled: Header | None = None
    for _ in range(_ATTEMPTS):
        loaded = _read_full(collection, uid) if scope >= LoadScope.FULL else _read_active(collection, uid)
        header = loaded.header if loaded is not None else None
        if loaded is not None and header is not None and _needs_copies(header) and not loaded.complete:
            if unsettled is not None and header.same_state(unsettled):
                scope = LoadScope.FULL
                continue
            unsettled, loaded = header, None
        if loaded is not None:
            return loaded
        time.sleep(next(delays))
    raise StorageError(
        f"could not load session {uid!r}: it changed during each of {_ATTEMPTS} attempts"
    )


def _read_active(collection: Collection[Document], uid: str) -> Loaded | None:
    """Header, active items and tail in one query; ``None`` if a save overlapped it."""
    found = collection.find({"uid": uid, "active": True}, _SKIPPED)
    documents = list(found.sort("seq", 1).batch_size(_BATCH))
    headers = [document for document in documents if document.get("seq") == layout.SEQ_HEADER]
    if not headers:
        return Loaded(None, [], complete=True)
    header = _header(headers[0])
    if header.version is None:
        return Loaded(header, [], complete=True)
    if _needs_copies(header):
        return Loaded(header, [], complete=False)  # not to be believed: see read()
    tails = [document for document in documents if document.get("seq") == layout.SEQ_TAIL
             and document.get("key") == header.key]
    if not _agree(header, tails[0] if tails else None):
        return None
    items = [document for document in documents if document.get("seq") == layout.SEQ_ITEM]
    return Loaded(header, items, complete=False)


def _agree(header: Header, tail: Mapping[str, Any] | None) -> bool:
    """True if no save changed an item between the reads of ``header`` and ``tail``.

    Every save rewrites the tail after its flip and before any item. A
    header that carries its save's records (``pending``) may see the tail
    lag behind (nothing rewritten yet), never pass it.
    """
    assert header.version is not None
    version = tail.get("version") if tail is not None else None
    if version == header.version:
        return tail is not None and tail.get("writer") == header.writer
    lagging = isinstance(version, int) and version < header.version
    return header.pending is not None and (lagging or tail is None)


def _needs_copies(header: Header) -> bool:
    """Unsettled, and believed through copies (inactive: only a full load reads them)."""
    return header.unsettled and header.pending is None


def _read_full(collection: Collection[Document], uid: str) -> Loaded | None:
    """Header, every item, header again; ``None`` if the header moved in between."""
    first = read_header(collection, uid)
    if first is None or first.version is None:
        return Loaded(first, [], complete=True)
    items = list(collection.find({"uid": uid}, _SKIPPED).batch_size(_BATCH))
    last = read_header(collection, uid)
    if last is None or not first.same_state(last):
        return None
    items = [document for document in items if document.get("seq") == layout.SEQ_ITEM]
    return Loaded(last, items, complete=True)


def read_header(collection: Collection[Document], uid: str) -> Header | None:
    """The header alone, with whether its lease is live on the server's clock (one round trip)."""
    fields: Document = {name: 1 for name in _HEADER_FIELDS}
    fields["live"] = {"$gt": [LEASE_EXPIRES, NOW]}
    found = list(collection.aggregate([{"$match": {"_id": uid}}, {"$project": fields}]))
    return _header(found[0]) if found else None


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
        pending=_pending(document),
    )


def _pending(header: Mapping[str, Any]) -> tuple[Mapping[str, Any], ...] | None:
    """The settling save's records, as believed documents of the header's version."""
    entries = header.get("pending")
    if not isinstance(entries, list):
        return None
    common = {"session": header["key"], "version": header.get("version"), "committed": True}
    return tuple({**entry, **common} for entry in entries if isinstance(entry, dict))


def stored_session(uid: str, loaded: Loaded) -> StoredSession:
    """The believed items of a load, decoded, as core wants them."""
    header = loaded.header
    if header is None or header.version is None:
        return StoredSession(configs={}, instances={}, metadata={}, version=None)
    parts: dict[str, dict[str, Any]] = {kind: {} for kind in layout.KINDS}
    believed = layout.current_items(loaded.items, header, partial=not loaded.complete)
    for (kind, name), item in believed.items():
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
