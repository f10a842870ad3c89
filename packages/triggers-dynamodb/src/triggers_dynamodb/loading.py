"""Reading a session back: the items of one ``Query``, accepted only as one whole version.

A load is one strongly consistent ``Query`` of the session's key range
(``sk < "R"`` for a fire, the whole partition for a full load). The header
``#`` sorts before every record, so it comes back with them: no ``GetItem``.

DynamoDB applies a transaction's items one by one as far as a ``Query`` is
concerned (read-committed per item), so what one query returns may hold part
of a save that committed while it ran. Every item carries ``v``, the version
that wrote it, and the header counts how many items its version wrote in
each key range (``wa``: below ``R``, ``wr``: ``R#``). What was read is one
version whole when no item is newer than the header and exactly that many
items carry the header's version; otherwise it is read again. This
needs no order between the reads (the header may be read before or after
the items): a save is fenced on the version, so it starts only after the
save before it returned, and DynamoDB guarantees that a returned
``TransactWriteItems`` is fully visible to strongly consistent reads. Only
the save in flight can be seen in part, and the counts catch that.

Deletions are written as tombstones (an item without ``body``) for the same
reason: an absent item could not be counted. Saves delete the tombstones
they loaded.

Records are handed to the core as the text they were stored as
(:class:`~triggers.storage.StoredText`): the core parses them, finished
history only when something reads it, and reports a record it cannot decode.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triggers.errors import CorruptSessionError, StorageError
from triggers.locking import Clock
from triggers.storage import LoadScope, StoredSession, StoredText
from triggers_dynamodb import skew
from triggers_dynamodb.items import (
    ACTIVE_END,
    EPOCH_ATTRIBUTE,
    HEADER_SK,
    Kind,
    StoredItem,
    number,
    parse_record_item,
)

__all__ = ["LOAD_ATTEMPTS", "Seen", "SessionView", "assemble", "load"]

LOAD_ATTEMPTS = 50
"""Reads of a session before a load that keeps seeing a save in flight gives up."""


@dataclass
class Seen:
    """What was last loaded or saved of a session, beyond the records.

    ``places`` says where each known instance lives (``Kind.ACTIVE`` or
    ``Kind.RESOLVED``), so a save that resolves one leaves a tombstone where
    it was; ``tombstones`` are those loaded, which a later save deletes.
    ``expires`` is the session's expiry, ``items_expire`` the one every item
    of the epoch has at least (see :mod:`.expiry`).
    """

    version: int | None = None
    epoch: str | None = None
    expires: int | None = None
    items_expire: int | None = None
    expired: bool = False
    places: dict[str, str] = field(default_factory=dict)
    tombstones: dict[str, StoredItem] = field(default_factory=dict)


@dataclass
class SessionView:
    """One session object's side of its session, which the shared store does not keep.

    The store serves every session object of the process; what a save must
    know of the load it is based on (where each instance lives, the epoch,
    the tombstones to sweep, both clocks at the answer, for the skew check)
    belongs to the object that loaded, which passes this along with each
    load and save. ``clock`` is that object's clock (the ``clock`` option).
    """

    clock: Clock = time.time
    seen: Seen = field(default_factory=Seen)
    clocks: tuple[float, float | None] | None = None
    """(this machine's clock, DynamoDB's) at the answer of the last load."""


def load(client: Any, table_name: str, uid: str, scope: LoadScope, view: SessionView) -> StoredSession:
    """Read the session whole for ``scope``, again while a save is seen in flight."""
    for attempt in range(LOAD_ATTEMPTS):
        found = _query(client, table_name, uid, scope, view)
        loaded = assemble(uid, table_name, found, scope, view.clock(), view.seen)
        if loaded is not None:
            stored, view.seen = loaded
            return stored
        _wait_for_save_in_flight(attempt)
    raise StorageError(
        f"session {uid!r}: {LOAD_ATTEMPTS} loads in a row saw part of a save that never "
        f"completed; the items of table {table_name!r} for this session are inconsistent"
    )


def _query(client: Any, table_name: str, uid: str, scope: LoadScope, view: SessionView) -> list[dict[str, Any]]:
    """The session's items (the header first), strongly consistent, every page.

    A fire's ACTIVE load reads ``sk < "R"`` (header, configs, active
    instances, metadata), one page unless they exceed 1 MB. The clocks at
    the first answer are kept for an optimistic save's skew check.
    """
    request: dict[str, Any] = {
        "TableName": table_name,
        "KeyConditionExpression": "pk = :uid",
        "ExpressionAttributeValues": {":uid": {"S": uid}},
        "ConsistentRead": True,
    }
    if scope < LoadScope.FULL:
        request["KeyConditionExpression"] += " AND sk < :end"
        request["ExpressionAttributeValues"][":end"] = {"S": ACTIVE_END}
    found: list[dict[str, Any]] = []
    while True:
        page = client.query(**request)
        if not found:
            view.clocks = (view.clock(), skew.server_time(page))
        found += page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return found
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def _wait_for_save_in_flight(attempt: int) -> None:
    """Pause before reading a session again that was caught in the middle of a save."""
    time.sleep(min(0.2, 0.005 * 2**attempt))


@dataclass
class _Sorted:
    """The record items of one read, sorted out."""

    records: dict[str, dict[str, StoredText]]
    places: dict[str, str]
    tombstones: dict[str, StoredItem]
    counted: dict[str, int]


def assemble(
    uid: str, table_name: str, found: list[dict[str, Any]], scope: LoadScope, now: float, known: Seen
) -> tuple[StoredSession, Seen] | None:
    """The session read in ``found`` and what is now known of it, or None if it is not whole.

    ``known`` is what was known before; its places and tombstones are kept
    while the session is at the same version and epoch (a full load after an
    active one adds to them).
    """
    header = next((raw for raw in found if raw["sk"]["S"] == HEADER_SK), {})
    version = number(header.get("version"))
    epoch = header.get(EPOCH_ATTRIBUTE, {}).get("S")
    expires = number(header.get("session_expires"))
    # Headers written before items_expire existed gave every item the session's expiry.
    items_expire = number(header.get("items_expire")) or expires
    if version is not None and expires is not None and expires <= now:
        expired = Seen(version, epoch, expires, items_expire, expired=True)
        return StoredSession({}, {}, {}, version=version), expired
    items = _sort(uid, table_name, [raw for raw in found if raw is not header], version, epoch)
    if items is None:
        return None
    if items.counted[Kind.ACTIVE] != (number(header.get("wa")) or 0):
        return None
    if scope >= LoadScope.FULL and items.counted[Kind.RESOLVED] != (number(header.get("wr")) or 0):
        return None
    seen = known
    if (known.version, known.epoch) != (version, epoch) or known.expired:
        seen = Seen(version, epoch, expires, items_expire)
    seen.places.update(items.places)
    seen.tombstones.update(items.tombstones)
    stored = StoredSession(
        configs=items.records[Kind.CONFIG],
        instances=items.records[Kind.ACTIVE],
        metadata=items.records[Kind.METADATA],
        version=version,
        complete=scope >= LoadScope.FULL,
    )
    return stored, seen


def _sort(
    uid: str, table_name: str, found: list[dict[str, Any]], version: int | None, epoch: str | None
) -> _Sorted | None:
    """Sort record items by kind, counting those of ``version``; None if one is newer."""
    out = _Sorted({Kind.CONFIG: {}, Kind.ACTIVE: {}, Kind.METADATA: {}}, {}, {},
                  {Kind.ACTIVE: 0, Kind.RESOLVED: 0})
    for raw in found:
        item = _parse(uid, table_name, raw)
        if version is None or item.version > version:
            return None  # an item of a save whose header this read did not see
        if item.epoch != epoch:
            continue  # left over from the session's life before it expired
        if item.version == version:
            out.counted[Kind.RESOLVED if item.kind == Kind.RESOLVED else Kind.ACTIVE] += 1
        if item.body is None:
            out.tombstones[item.sk] = item
            continue
        resolved = item.kind == Kind.RESOLVED
        kind = Kind.ACTIVE if resolved else item.kind
        out.records[kind][item.name] = StoredText(item.body, resolved=resolved)
        if kind == Kind.ACTIVE:
            out.places[item.name] = item.kind
    return out


def _parse(uid: str, table_name: str, raw: Mapping[str, Any]) -> StoredItem:
    """A record item, or a CorruptSessionError naming it if this backend did not write it."""
    try:
        item = parse_record_item(raw)
        if item.kind not in (Kind.CONFIG, Kind.ACTIVE, Kind.METADATA, Kind.RESOLVED):
            raise ValueError(f"unknown sort key prefix {item.kind!r}")
        return item
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        sk = raw.get("sk", {}).get("S", "?")
        raise CorruptSessionError(
            f"session {uid!r}: item {sk!r} of table {table_name!r} is not one this "
            f"backend wrote ({type(error).__name__}: {error}); it was left untouched"
        ) from error
