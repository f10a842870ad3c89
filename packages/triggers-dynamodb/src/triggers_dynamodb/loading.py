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
items carry the header's version; otherwise the caller reads again. This
needs no order between the reads (the header may be read before or after
the items): a save is fenced on the version, so it starts only after the
save before it returned, and DynamoDB guarantees that a returned
``TransactWriteItems`` is fully visible to strongly consistent reads. Only
the save in flight can be seen in part, and the counts catch that.

Deletions are written as tombstones (an item without ``body``) for the same
reason: an absent item could not be counted. Saves delete the tombstones
they loaded.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triggers.errors import CorruptSessionError
from triggers.storage import LoadScope, StoredSession
from triggers_dynamodb.items import HEADER_SK, Kind, StoredItem, number, parse_record_item

__all__ = ["Seen", "assemble"]


@dataclass
class Seen:
    """What a session object last loaded or saved of its session, beyond the records.

    ``places`` says where each known instance lives (``Kind.ACTIVE`` or
    ``Kind.RESOLVED``), so a save that resolves one leaves a tombstone where
    it was; ``tombstones`` are those loaded, which a later save deletes.
    """

    version: int | None = None
    generation: str | None = None
    expires: int | None = None
    expired: bool = False
    places: dict[str, str] = field(default_factory=dict)
    tombstones: dict[str, StoredItem] = field(default_factory=dict)


@dataclass
class _Sorted:
    """The record items of one read, sorted out."""

    records: dict[str, dict[str, Any]]
    places: dict[str, str]
    tombstones: dict[str, StoredItem]
    counted: dict[str, int]


def assemble(
    uid: str, table_name: str, found: list[dict[str, Any]], scope: LoadScope, now: float, known: Seen
) -> tuple[StoredSession, Seen] | None:
    """The session read in ``found`` and what is now known of it, or None if it is not whole.

    ``known`` is what this object knew before; its places and tombstones are
    kept while the session is at the same version and generation (a full
    load after an active one adds to them).
    """
    header = next((raw for raw in found if raw["sk"]["S"] == HEADER_SK), {})
    version = number(header.get("version"))
    generation = header.get("g", {}).get("S")
    expires = number(header.get("session_expires"))
    if version is not None and expires is not None and expires <= now:
        return StoredSession({}, {}, {}, version=version), Seen(version, generation, expires, expired=True)
    items = _sort(uid, table_name, [raw for raw in found if raw is not header], version, generation)
    if items is None:
        return None
    if items.counted[Kind.ACTIVE] != (number(header.get("wa")) or 0):
        return None
    if scope >= LoadScope.FULL and items.counted[Kind.RESOLVED] != (number(header.get("wr")) or 0):
        return None
    seen = known
    if (known.version, known.generation) != (version, generation) or known.expired:
        seen = Seen(version, generation, expires)
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
    uid: str, table_name: str, found: list[dict[str, Any]], version: int | None, generation: str | None
) -> _Sorted | None:
    """Sort record items by kind, counting those of ``version``; None if one is newer."""
    out = _Sorted({Kind.CONFIG: {}, Kind.ACTIVE: {}, Kind.METADATA: {}}, {}, {},
                  {Kind.ACTIVE: 0, Kind.RESOLVED: 0})
    for raw in found:
        item = _parse(uid, table_name, raw)
        if version is None or item.version > version:
            return None  # an item of a save whose header this read did not see
        if item.generation != generation:
            continue  # left over from the session's life before it expired
        if item.version == version:
            out.counted[Kind.RESOLVED if item.kind == Kind.RESOLVED else Kind.ACTIVE] += 1
        if item.is_tombstone:
            out.tombstones[item.sk] = item
            continue
        kind = Kind.ACTIVE if item.kind == Kind.RESOLVED else item.kind
        out.records[kind][item.name] = _record(uid, table_name, item)
        if kind == Kind.ACTIVE:
            out.places[item.name] = item.kind
    return out


def _parse(uid: str, table_name: str, raw: Mapping[str, Any]) -> StoredItem:
    try:
        item = parse_record_item(raw)
        if item.kind not in (Kind.CONFIG, Kind.ACTIVE, Kind.METADATA, Kind.RESOLVED):
            raise ValueError(f"unknown sort key prefix {item.kind!r}")
        return item
    except (KeyError, ValueError, TypeError, AttributeError) as error:
        raise _corrupt(uid, table_name, raw, error) from error


def _record(uid: str, table_name: str, item: StoredItem) -> Any:
    try:
        return item.record()
    except ValueError as error:  # JSONDecodeError included
        raise _corrupt(uid, table_name, {"sk": {"S": item.sk}}, error) from error


def _corrupt(uid: str, table_name: str, raw: Mapping[str, Any], error: Exception) -> CorruptSessionError:
    sk = raw.get("sk", {}).get("S", "?")
    return CorruptSessionError(
        f"session {uid!r}: item {sk!r} of table {table_name!r} is not one this "
        f"backend wrote ({type(error).__name__}: {error}); it was left untouched"
    )
