"""The item layout of a session in its DynamoDB table, and the record codec.

One table holds every session. Each session is one *item collection*: the
partition key ``pk`` is the session uid, the sort key ``sk`` says what the
item is. Sort keys are ordered so that a fire's partial load is one key range:

=============  ================================================  =============
``sk``         item                                              loaded by
=============  ================================================  =============
``#``          session header: version, write counts, lease     every load
``C#<name>``   one task config                                   every load
``I#<name>``   one unresolved (active) task instance             every load
``M#<key>``    one top-level session metadata key                every load
``R#<name>``   one resolved (finished) task instance             full loads
=============  ================================================  =============

An ACTIVE load queries ``sk < "R"``; a FULL load queries the whole partition.
An instance that resolves moves from ``I#`` to ``R#`` in the save that
resolves it. Names are user strings; a name too long for DynamoDB's 1,024-byte
sort key is keyed by its SHA-256 instead (``I@<hex>``; ``@`` never follows a
literal name's prefix, so the two forms cannot collide). Every record item
also carries its ``name``, so keys are never parsed back into names.

Records (a task config, a task instance, a metadata value) are stored as their
canonical JSON text in the string attribute ``body``, not as native DynamoDB
maps: DynamoDB numbers hold 38 digits between 1e-130 and 1e126 (so ``1e308``
and ``5e-324`` do not fit), come back as ``Decimal`` without telling ``1`` from
``1.0``, map keys cannot be empty, and maps nest at most 32 levels. JSON text
holds the whole value domain exactly (a float is written with ``repr`` and read
back bit for bit), is what every other Triggers backend stores, and its size is
exactly what the size limits measure.

Every record item carries ``v``, the session version that wrote it, and
``g``, the session's *epoch* (:data:`triggers.stores.EPOCH`, the one name for
a session's incarnation): a random name given when the session is first
saved, and again when it is saved after it expired, so that items left over
from its earlier life (until DynamoDB's Time To Live deletes them) are
ignored. (The attribute keeps its short stored name ``g``, which every item
written so far carries; only the code calls it the epoch.) With a
``session_ttl``, every item carries ``expires_at``. An item
without ``body`` is a *tombstone* (a metadata key deleted, an instance moved to
``R#``) that loads skip and a later save deletes. The header counts how many
items its version wrote in each key range, which is how a load detects that it
saw only part of a concurrent save (see :mod:`triggers_dynamodb.loading`), and
the random ``save_token`` of the save that wrote it (see
:mod:`triggers_dynamodb.saving`).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triggers_dynamodb.table import TTL_ATTRIBUTE

__all__ = [
    "ACTIVE_END",
    "EPOCH_ATTRIBUTE",
    "HEADER_SK",
    "ITEM_BYTES_LIMIT",
    "TRANSACTION_BYTES",
    "TRANSACTION_ITEMS",
    "Item",
    "Kind",
    "StoredItem",
    "item_bytes",
    "number",
    "parse_record_item",
    "record_item",
    "record_key",
    "tombstone_item",
]

Item = dict[str, dict[str, Any]]
"""A DynamoDB item in the low-level client's form: ``{"attr": {"S": "..."}}``."""

EPOCH_ATTRIBUTE = "g"
"""Where the header and every record item keep the session's epoch (stored name kept short)."""

HEADER_SK = "#"
"""Sort key of the session header (sorts before every record)."""

ACTIVE_END = "R"
"""Sort keys below this one make up an ACTIVE load."""

SORT_KEY_BYTES = 1024
"""DynamoDB's limit on a sort key value, in UTF-8 bytes."""

ITEM_BYTES_LIMIT = 400_000
"""Largest item this backend writes, in DynamoDB's own size measure.

Below both AWS's 400 KB (409,600 bytes) and moto's 405,000 bytes, so a session
that works in the tests works on AWS and on DynamoDB Local.
"""


TRANSACTION_ITEMS = 100
"""Most items one ``TransactWriteItems`` may touch (the header included)."""

TRANSACTION_BYTES = 4_000_000
"""Most bytes one ``TransactWriteItems`` may carry (AWS: 4 MB)."""


class Kind:
    """Sort-key prefixes: what a record item holds."""

    CONFIG = "C"
    ACTIVE = "I"
    METADATA = "M"
    RESOLVED = "R"


@dataclass(frozen=True)
class StoredItem:
    """One record item as read back: where it lives and what it says."""

    kind: str
    name: str
    sk: str
    version: int
    epoch: str
    body: str | None
    """The record's canonical JSON text, as the core gave it to write; None for a tombstone."""

    @property
    def is_tombstone(self) -> bool:
        return self.body is None


def record_key(kind: str, name: str) -> str:
    """The sort key of record ``name`` of ``kind`` (hashed when too long)."""
    literal = f"{kind}#{name}"
    if len(literal.encode("utf-8")) <= SORT_KEY_BYTES:
        return literal
    return f"{kind}@{hashlib.sha256(name.encode('utf-8')).hexdigest()}"


def record_item(
    uid: str, kind: str, name: str, text: str, version: int, *, epoch: str,
    expires_at: int | None = None,
) -> Item:
    """The item storing a record's canonical JSON ``text`` as written by ``version``.

    ``epoch`` names the life of the session the item belongs to (a session
    that expired and started again has a new one); ``expires_at`` is the Unix
    second after which DynamoDB's Time To Live may delete it.
    """
    item = tombstone_item(uid, kind, name, version, epoch=epoch, expires_at=expires_at)
    item["body"] = {"S": text}
    return item


def tombstone_item(
    uid: str, kind: str, name: str, version: int, *, epoch: str, expires_at: int | None = None
) -> Item:
    """An item marking record ``name`` of ``kind`` as gone since ``version``."""
    item: Item = {
        "pk": {"S": uid},
        "sk": {"S": record_key(kind, name)},
        "name": {"S": name},
        "v": {"N": str(version)},
        EPOCH_ATTRIBUTE: {"S": epoch},
    }
    if expires_at is not None:
        item[TTL_ATTRIBUTE] = {"N": str(expires_at)}
    return item


def parse_record_item(item: Mapping[str, Any]) -> StoredItem:
    """Read a record item; raises ``KeyError``/``ValueError`` when it is malformed."""
    sk = item["sk"]["S"]
    body = item.get("body")
    return StoredItem(
        kind=sk[0],
        name=item["name"]["S"],
        sk=sk,
        version=int(item["v"]["N"]),
        epoch=item[EPOCH_ATTRIBUTE]["S"],
        body=None if body is None else body["S"],
    )


def number(attribute: Mapping[str, Any] | None) -> int | None:
    """An integer attribute (``{"N": "12"}``), or None when the item has none."""
    if attribute is None:
        return None
    return int(attribute["N"])


def item_bytes(item: Mapping[str, Mapping[str, Any]]) -> int:
    """An upper bound of an item's size as DynamoDB counts it.

    Attribute names plus values: strings by their UTF-8 bytes, numbers by one
    byte per two significant digits plus one (rounded up here), booleans and
    nulls one byte. Only the types this backend writes are handled.
    """
    size = 0
    for name, value in item.items():
        size += len(name.encode("utf-8"))
        ((kind, data),) = value.items()
        if kind == "S":
            size += len(data.encode("utf-8"))
        elif kind == "N":
            size += len(data) // 2 + 2
        elif kind in ("BOOL", "NULL"):
            size += 1
        else:  # pragma: no cover - the backend writes no other type
            raise TypeError(f"item attribute {name!r} has unsupported type {kind}")
    return size
