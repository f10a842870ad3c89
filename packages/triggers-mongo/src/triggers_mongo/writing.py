"""Saving: one conditional ``update`` command, inside a transaction or by the commit protocol.

A save is a list of statements sent as one ordered ``update`` command (split
only past 1,000 statements or 48 MB), each addressing one document by
``_id``. Its pivot is the **flip** of the header: a pipeline update of
``{_id: uid}`` that moves ``version`` from the loaded one to the new one,
conditioned on

* the header's ``key`` (the header the save loaded, not one created again
  after it expired) and its ``version`` (nobody saved since the load);
* for a lock holder, ``lease_token`` still being its own (the fence); for an
  optimistic save (no lease), no live lease: ``lease_expires <= $$NOW``, on
  the server's clock, as leases are taken.

When a condition fails, the pipeline converts a text naming the reason to a
number, which fails: the statement ends in an error carrying the reason, and
an ordered command stops there, so no statement after the flip runs
(:func:`refusal` turns it into :class:`StaleSessionError`). Two first saves
race for the header's ``_id``: the loser's upsert fails as a duplicate.

**With transactions** the command is ``[flip, tail, item, item, ...]``:
each changed item's document replaced (or inserted) in place, in one
transaction, then ``commitTransaction``: two round trips.

**Without transactions** (the commit protocol) an item document may only
change once the flip has made the new version the session's, and the save
must survive the command stopping anywhere (the server dying inside it). The
flip itself carries the save's records into the header (``pending``): the
command is ``[flip, tail, item, ..., settled]``, one round trip. Readers of a
header not yet ``settled`` take its ``pending`` records over the item
documents, which may be rewritten only in part (:mod:`.loading`); the
``settled`` mark drops them. A save whose records do not fit in the header
(over 8 MB) writes *copies* first instead (new documents tagged with the new
version and this save's ``writer``, inactive, believed only while the
header names that writer): ``[copy, ..., flip, tail, item, ..., settled]``,
then a ``delete`` of the copies. Once a flip has landed another writer may
settle that save and save the next version while the rest of its command
still runs, so every rewrite after the flip keeps a document of a newer
version as it is. A header left unsettled (the server died inside the
command) is settled by the next save first (:func:`settle`).
"""

from __future__ import annotations

import json
import logging
import re
import secrets
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import bson
from bson import ObjectId
from pymongo import DeleteOne, ReplaceOne, UpdateMany, UpdateOne, WriteConcern
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import BulkWriteError, OperationFailure, PyMongoError

from triggers.errors import SessionLimitError, StaleSessionError
from triggers.storage import SessionChanges, is_active_record
from triggers_mongo import layout
from triggers_mongo.layout import Header
from triggers_mongo.loading import LEASE_EXPIRES, NOW

__all__ = [
    "MAX_DOCUMENT_BYTES", "Plan", "Transaction", "clean_up", "guarded", "plan", "refusal",
    "refused_because", "settle", "write",
]

Document = dict[str, Any]
Bounded = Callable[[], AbstractContextManager[None]]

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's limit on one BSON document."""

BATCH = 1000
"""Most statements in one bounded call: a save of 10,000 items sends ten
calls, each of which must finish within its deadline, rather than one that
must carry them all in that time."""

logger = logging.getLogger(__name__)

_PENDING_BYTES = 8 * 1024 * 1024
"""Most bytes of records a save without transactions carries in the header; a
bigger one writes copies instead."""

_REFUSED = "triggers refused the save: "
_REFUSAL_TEXT = re.compile(re.escape(_REFUSED) + r"([^'\"]*)")
_WRITE_CONFLICT = 112
_DUPLICATE_KEY = 11000
_CONVERSION_FAILURE = 241


@dataclass(frozen=True)
class Plan:
    """The statements of one save, and what the session looks like once it is written.

    ``cleanup``: deletes sent after it, whether it was written or refused:
    its copies, and copies a load found dead.
    """

    statements: list[Any]
    flip_at: int
    cleanup: list[Any]
    after: Header


@dataclass(frozen=True)
class Transaction:
    """Where and how a save runs as a transaction."""

    session: ClientSession
    concern: WriteConcern
    commit_seconds: float


def plan(
    changes: SessionChanges,
    header: Header,
    *,
    session_ttl: float | None,
    now: float,
    transaction: bool,
    dead: list[Any],
) -> Plan:
    """The statements saving ``changes`` over ``header`` (the one loaded, or a new one).

    ``dead``: copies the load found that no save can commit any more; deleted after it.
    """
    writer = secrets.token_hex(16)
    fields: Document = {"uid": changes.uid, "active": True, "seq": layout.SEQ_HEADER,
                        "key": header.key, "version": changes.new_version, "writer": writer}
    expiry = _expiry(header, session_ttl, now)
    fields.update(expiry.header_fields)
    if changes.lease is None:  # the lease is free or expired: leave none behind
        fields.update(lease_token=None, lease_expires=0.0, lease_session=None)
    after = Header(header.key, changes.new_version, writer, changes.new_version, expiry.items_expire_at)
    documents = _documents(changes, header.key, writer, expiry.items_expire_at)
    if not transaction:
        documents.extend(_carried(changes.uid, header, after, documents))
    pending = [_pending_entry(document) for document in documents]
    if transaction:
        fields.update(settled=changes.new_version, pending=None)
    elif len(bson.encode({"pending": pending})) <= _PENDING_BYTES:
        fields["pending"] = pending
    flip = [_flip(changes, header.key, fields),
            _replace(_tail(changes.uid, after), monotonic=not transaction)]
    items = [_replace(document, monotonic=not transaction) for document in documents]
    refresh = _refresh(changes.uid, header.key, expiry)
    if transaction:
        return Plan([*flip, *items, *refresh], 0, _deletes(dead), after)
    settled = _settled(changes.uid, changes.new_version, writer)
    if "pending" in fields:
        return Plan([*flip, *items, *refresh, settled], 0, _deletes(dead), after)
    copies = [_copy(document) for document in documents]
    statements: list[Any] = [ReplaceOne({"_id": copy["_id"]}, copy, upsert=True) for copy in copies]
    statements.extend([*flip, *items, *refresh, settled])
    cleanup = _deletes([*(copy["_id"] for copy in copies), *dead])
    return Plan(statements, len(copies), cleanup, after)


def write(
    collection: Collection[Document],
    chosen: Plan,
    bounded: Bounded,
    transaction: Transaction | None = None,
) -> None:
    """Send the statements in order, each batch bounded; stop at the first error.

    With ``transaction``, run them in one transaction, then commit it (or
    abort it if anything fails before the commit).
    """
    if transaction is None:
        _send(collection, chosen.statements, bounded, None)
        return
    session = transaction.session
    session.start_transaction(  # sent along with the first statement
        write_concern=transaction.concern,
        max_commit_time_ms=int(transaction.commit_seconds * 1000),
    )
    try:
        _send(collection, chosen.statements, bounded, session)
        with bounded():
            session.commit_transaction()
    except BaseException:
        if session.in_transaction:
            _abort(session, bounded)
        raise


def _send(
    collection: Collection[Document], statements: list[Any], bounded: Bounded,
    session: ClientSession | None,
) -> None:
    for start in range(0, len(statements), BATCH):
        with bounded():
            collection.bulk_write(statements[start : start + BATCH], ordered=True, session=session)


def _abort(session: ClientSession, bounded: Bounded) -> None:
    try:
        with bounded():
            session.abort_transaction()
    except PyMongoError:
        pass  # the server drops an unfinished transaction by itself


def clean_up(collection: Collection[Document], chosen: Plan, bounded: Bounded) -> None:
    """Delete what ``chosen`` leaves behind (best effort: nobody believes it any more).

    A failure is logged, not raised: the save itself is written (or refused)
    by then, and a copy left behind is found dead, and deleted, later.
    """
    if not chosen.cleanup:
        return
    try:
        with bounded():
            collection.bulk_write(chosen.cleanup, ordered=False)
    except PyMongoError as error:
        logger.warning("could not delete %d leftover copies: %s", len(chosen.cleanup), error)


def refusal(error: PyMongoError, uid: str, base: int | None) -> StaleSessionError | None:
    """The refusal a driver error stands for (the flip's condition failed), or ``None``.

    Outside a transaction the flip's failure is a write error of the bulk; in
    one, the server may report it as the command's error instead.
    """
    reason = refused_because(error)
    code = error.code if isinstance(error, OperationFailure) else None
    if isinstance(error, BulkWriteError):
        code = (error.details.get("writeErrors") or [{}])[0].get("code")
    if reason is None and code == _DUPLICATE_KEY:  # the only unique key: the header's _id
        reason = "another writer created the session first"
    elif reason is None and code == _WRITE_CONFLICT:
        reason = "another writer was saving it at the same time"
    if reason is None:
        return None
    loaded = "a new session" if base is None else f"version {base}"
    return StaleSessionError(
        f"session {uid!r}: {reason}; this save (of {loaded}) was refused and nothing was written"
    )


def settle(collection: Collection[Document], uid: str, header: Header, bounded: Bounded) -> None:
    """Finish a save without transactions whose command stopped after its flip (idempotent).

    Its records are the header's ``pending``, or else its copies, found among
    every document of the session by version and writer (which only ever
    happens after such a crash): the item documents are rewritten from them,
    the header marked settled, the copies deleted.
    """
    assert header.version is not None and header.writer is not None
    copies: list[Document] = []
    if header.pending is not None:
        sources: list[Document] = [dict(entry) for entry in header.pending]
    else:
        mine = {"session": header.key, "version": header.version, "writer": header.writer,
                "committed": False}
        with bounded():
            copies = [document for document in collection.find({"uid": uid})
                      if all(document.get(name) == value for name, value in mine.items())]
        sources = copies
    statements: list[Any] = [_replace(_tail(uid, header), monotonic=True)]
    statements.extend(_replace(_item(uid, header, source), monotonic=True) for source in sources)
    statements.append(_settled(uid, header.version, header.writer))
    with bounded():
        collection.bulk_write(statements, ordered=True)
    clean_up(collection, Plan([], 0, _deletes([copy["_id"] for copy in copies]), header), bounded)


# -- statements ------------------------------------------------------------------


def _flip(changes: SessionChanges, key: str, fields: Document) -> UpdateOne:
    """The header's conditional update (see the module docstring)."""
    why: Document = {"$switch": {"branches": _refusals(changes, key), "default": None}}
    literal = {name: {"$literal": value} for name, value in fields.items()}
    return UpdateOne({"_id": changes.uid}, guarded(why, literal), upsert=True)


def guarded(why: Document, fields: Document) -> list[Document]:
    """A pipeline update setting ``fields`` unless ``why`` (an expression) gives a reason.

    A reason fails the statement: the pipeline converts ``"triggers refused the
    save: <reason>"`` to a number. The filter stays ``{_id: ...}`` alone, so
    every server finds the document through its ``_id`` index.
    """
    failed = {"$toInt": {"$concat": [_REFUSED, "$_refusal"]}}
    return [
        {"$set": {"_refusal": why}},
        {"$set": {"_refusal": {"$cond": [{"$eq": ["$_refusal", None]}, None, failed]}}},
        {"$set": fields},
        {"$unset": "_refusal"},
    ]


def refused_because(error: PyMongoError) -> str | None:
    """The reason a :func:`guarded` update gave, or ``None`` if ``error`` is another error."""
    code, message = None, ""
    if isinstance(error, BulkWriteError):
        failures = error.details.get("writeErrors") or [{}]
        code, message = failures[0].get("code"), str(failures[0].get("errmsg", ""))
    elif isinstance(error, OperationFailure):
        code, message = error.code, str(error.details.get("errmsg", "") if error.details else error)
    if code != _CONVERSION_FAILURE or _REFUSED not in message:
        return None
    found = _REFUSAL_TEXT.search(message)
    return found.group(1).strip() if found else "refused"


def _refusals(changes: SessionChanges, key: str) -> list[Document]:
    """``$switch`` branches: each a failed condition and the reason it gives."""
    stored_key = {"$ifNull": ["$key", None]}
    base = changes.base_version
    branches: list[Document] = []
    if base is None:
        created = {"$and": [{"$ne": [stored_key, None]}, {"$ne": [stored_key, key]}]}
        branches.append({"case": created, "then": "another writer created the session first"})
    else:
        branches.append({"case": {"$eq": [stored_key, None]}, "then": "its header is gone (expired?)"})
        branches.append({
            "case": {"$ne": [stored_key, key]},
            "then": "its header was created again (the session expired and its uid was reused)",
        })
    if changes.lease is None:
        live = {"$gt": [LEASE_EXPIRES, NOW]}
        branches.append({"case": live, "then": "a lock holder holds its lease"})
    else:
        token = {"$ifNull": ["$lease_token", None]}
        branches.append({
            "case": {"$ne": [token, changes.lease.token]},
            "then": "the lease was taken over by another holder",
        })
    stored = {"$ifNull": [{"$toString": "$version"}, "none"]}
    branches.append({
        "case": {"$ne": [{"$ifNull": ["$version", None]}, base]},
        "then": {"$concat": ["another writer saved first (the stored version is ", stored, ")"]},
    })
    return branches


def _tail(uid: str, header: Header) -> Document:
    """The tail of ``header``: written right after the flip, before any item (see :mod:`.loading`)."""
    return {"_id": layout.tail_id(header.key), "uid": uid, "active": True, "seq": layout.SEQ_TAIL,
            "key": header.key, "version": header.version, "writer": header.writer}


def _replace(document: Document, *, monotonic: bool) -> UpdateOne | ReplaceOne[Document]:
    """Write ``document`` over the one of its ``_id`` (or insert it).

    ``monotonic`` (without transactions): unless the stored one is of a newer
    version. Once a save's flip has landed, another writer may settle it and
    save the next version while the rest of its command still runs; its
    late statements must not take that newer version back.
    """
    if not monotonic:
        return ReplaceOne({"_id": document["_id"]}, document, upsert=True)
    newer = {"$gt": [{"$ifNull": ["$version", 0]}, document["version"]]}
    kept = {"$cond": [newer, "$$ROOT", {"$literal": document}]}
    return UpdateOne({"_id": document["_id"]}, [{"$replaceWith": kept}], upsert=True)


def _copy(document: Document) -> Document:
    """A save's copy of an item document (commit protocol): uncommitted, and inactive
    (only a full load, of a header not settled yet, reads it)."""
    return {**document, "_id": ObjectId(), "committed": False, "active": False}


def _item(uid: str, header: Header, source: Mapping[str, Any]) -> Document:
    """The item document a copy or a ``pending`` entry of ``header``'s save stands for."""
    kind, record = source["kind"], source["record"]
    if source.get("deleted"):
        active = False
    elif kind == layout.KIND_INSTANCE:
        active = is_active_record(json.loads(record))
    else:
        active = True
    item: Document = {
        "_id": layout.item_id(header.key, kind, source["name"]), "uid": uid, "seq": layout.SEQ_ITEM,
        "session": header.key, "kind": kind, "name": source["name"], "version": header.version,
        "writer": header.writer, "committed": True, "active": active, "record": record,
    }
    if source.get("deleted"):
        item["deleted"] = True
    if header.items_expire_at is not None:
        item["expires_at"] = header.items_expire_at
    return item


def _deletes(ids: list[Any]) -> list[Any]:
    """One delete per ``_id`` (a long ``$in`` costs some servers quadratic time)."""
    return [DeleteOne({"_id": _id}) for _id in ids]


def _settled(uid: str, version: int, writer: str) -> UpdateOne:
    """Mark the header settled (and drop its ``pending``) if it is still this save's."""
    ours = {"$and": [{"$eq": ["$version", version]}, {"$eq": ["$writer", writer]}]}
    fields = {"settled": {"$cond": [ours, version, "$settled"]},
              "pending": {"$cond": [ours, None, "$pending"]}}
    return UpdateOne({"_id": uid}, [{"$set": fields}])


def _carried(uid: str, header: Header, after: Header, documents: list[Document]) -> list[Document]:
    """The records of an unsettled save in ``header`` that this save does not change.

    This save writes them again (as its own, in its ``pending`` and item
    documents), which settles that save within this one command, instead of
    settling it first. Only without transactions, and for a save that
    carries its records in the header.
    """
    if not header.unsettled or header.pending is None:
        return []
    changed = {(document["kind"], document["name"]) for document in documents}
    return [_item(uid, after, entry) for entry in header.pending
            if (entry["kind"], entry["name"]) not in changed]


def _pending_entry(document: Document) -> Document:
    """What the header carries of an item document while its save settles."""
    names = ("kind", "name", "record", "active", "deleted")
    return {name: document[name] for name in names if name in document}


@dataclass(frozen=True)
class _Expiry:
    header_fields: Document
    items_expire_at: datetime | None
    refresh: bool


def _expiry(header: Header, session_ttl: float | None, now: float) -> _Expiry:
    """Dates of ``session_ttl``: the header's from this save, the items' renewed once per
    ``session_ttl``.

    Items carry a date at least as late as the header's (now + 2 x session_ttl
    when renewed), so renewing them all costs one statement per ``session_ttl``
    period, not one per save. The rule goes by the dates stored (renew when the
    items' date falls before the header's new one), not by when it was last
    set, so writers configured with different ``session_ttl`` never leave an
    item expiring before its header.
    """
    if session_ttl is None:
        return _Expiry({}, header.items_expire_at, refresh=False)
    fields: Document = {"expires_at": moment(now + session_ttl)}
    items_expire_at = header.items_expire_at
    if items_expire_at is None or items_expire_at < moment(now + session_ttl):
        items_expire_at = fields["items_expire_at"] = moment(now + 2 * session_ttl)
        return _Expiry(fields, items_expire_at, refresh=True)
    return _Expiry(fields, items_expire_at, refresh=False)


def _refresh(uid: str, key: str, expiry: _Expiry) -> list[Any]:
    """Move the expiry of the session's item documents (not of copies, nor of an older header's)."""
    if not expiry.refresh:
        return []
    mine = {"$and": [{"$eq": ["$session", key]}, {"$eq": ["$committed", True]}]}
    date = {"$max": [{"$ifNull": ["$expires_at", None]}, {"$literal": expiry.items_expire_at}]}
    later = {"$cond": [mine, date, "$expires_at"]}
    return [UpdateMany({"uid": uid}, [{"$set": {"expires_at": later}}])]


def moment(seconds: float) -> datetime:
    """Seconds since the epoch as a UTC datetime (BSON keeps milliseconds)."""
    return datetime.fromtimestamp(seconds, UTC)


def _documents(
    changes: SessionChanges, key: str, writer: str, expires_at: datetime | None
) -> list[Document]:
    """The item documents of a save, each checked against the 16 MB limit first."""
    common: Document = {
        "uid": changes.uid, "seq": layout.SEQ_ITEM, "session": key, "version": changes.new_version,
        "writer": writer, "committed": True,
    }
    if expires_at is not None:
        common["expires_at"] = expires_at
    documents = []
    for kind, name, text, active, deleted in _records(changes):
        document = {"_id": layout.item_id(key, kind, name), **common, "kind": kind, "name": name,
                    "active": active, "record": text}
        if deleted:
            document["deleted"] = True
        _check_size(changes.uid, document)
        documents.append(document)
    return documents


def _records(changes: SessionChanges) -> Iterator[tuple[str, str, str, bool, bool]]:
    """(kind, name, record's JSON text, active, deleted) of every changed item."""
    for row in changes.rows():
        yield row.kind, row.name, row.text, row.active, False  # the kinds are the core's
    for name in changes.deleted_metadata:  # a tombstone: inactive, no load of a fire needs it
        yield layout.KIND_METADATA, name, "null", False, True


def _check_size(uid: str, document: Document) -> None:
    size = len(bson.encode(document))
    if size > MAX_DOCUMENT_BYTES:
        raise SessionLimitError(
            f"session {uid!r}: {document['kind']} {document['name']!r} takes {size} bytes as a "
            f"MongoDB document; the limit is {MAX_DOCUMENT_BYTES}. Nothing was written"
        )
