"""Session expiry (option ``session_ttl``) with DynamoDB's Time To Live.

The header stores the session's expiry (``session_expires``), ``session_ttl``
after its last save; a load that finds it passed reads an empty session.
DynamoDB's Time To Live deletes items by their ``expires_at`` (usually within
days), so no item may expire before its session: every item of the epoch
expires at ``items_expire`` (kept in the header) or later.

To keep saves incremental, ``items_expire`` follows core's one extension rule
(:func:`triggers.stores.expiry_due`): it is set to ``2 * session_ttl`` ahead,
and set again only once half a ``session_ttl`` has passed since, so it always
stays at least ``1.5 * session_ttl`` ahead of the latest save, beyond the
session's own expiry. Setting it again updates the session's other items in
transactions of up to 100 conditional updates, each of which only ever makes
an item's expiry later: writers racing to extend it (optimistic saves take
no lock) never shorten it, and an item that another save deleted (a swept
tombstone) is not brought back as a bare key. A writer whose save is then
refused leaves items that expire later than their session, which is
harmless (readers go by the header). The header itself stays
:data:`HEADER_GRACE_SECONDS` longer than the items, so versions never
restart while leftover items may exist.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from triggers.stores import expiry_due
from triggers_dynamodb.errors import CONFLICT_ATTEMPTS, cancellation_codes, pause_after_conflict
from triggers_dynamodb.items import EPOCH_ATTRIBUTE, HEADER_SK, TRANSACTION_ITEMS, number
from triggers_dynamodb.loading import Seen
from triggers_dynamodb.table import TTL_ATTRIBUTE

__all__ = ["HEADER_GRACE_SECONDS", "ITEMS_HORIZON", "Expiry", "after_save", "extend"]

HEADER_GRACE_SECONDS = 30 * 86_400
"""How long a header stays in the table after its items may be deleted."""

ITEMS_HORIZON = 2.0
"""Items expire this many ``session_ttl`` after their expiry was last set."""

_RETRIED = {"ConditionalCheckFailed", "TransactionConflict"}


@dataclass(frozen=True)
class Expiry:
    """A session's expiry after a save (Unix seconds; None: never)."""

    session: int | None
    items: int | None
    extend: bool
    """Whether every other item of the session must get ``items`` before the save."""


def after_save(seen: Seen, fresh: bool, session_ttl: float | None, now: float) -> Expiry:
    """The expiry a save leaves (``fresh``: the save starts a new epoch).

    A process without ``session_ttl`` keeps a session's expiry as it is.
    """
    if session_ttl is None:
        return Expiry(None, None, False) if fresh else Expiry(seen.expires, seen.items_expire, False)
    session = math.ceil(now + session_ttl)
    last_set = None if fresh or seen.items_expire is None else seen.items_expire - ITEMS_HORIZON * session_ttl
    if not expiry_due(last_set, now, session_ttl):
        return Expiry(session, seen.items_expire, False)
    return Expiry(session, math.ceil(now + ITEMS_HORIZON * session_ttl), not fresh)


def extend(client: Any, table_name: str, uid: str, epoch: str, expires: int, *, skip: set[str]) -> None:
    """Give every item of the session's ``epoch`` (but ``skip``) at least ``expires``."""
    pages = client.get_paginator("query").paginate(
        TableName=table_name,
        KeyConditionExpression="pk = :uid",
        ExpressionAttributeValues={":uid": {"S": uid}},
        ProjectionExpression="sk, #epoch, #ttl",
        ExpressionAttributeNames={"#epoch": EPOCH_ATTRIBUTE, "#ttl": TTL_ATTRIBUTE},
        ConsistentRead=True,
    )
    stale = [
        item["sk"]["S"]
        for page in pages
        for item in page.get("Items", [])
        if item["sk"]["S"] != HEADER_SK
        and item["sk"]["S"] not in skip
        and item.get(EPOCH_ATTRIBUTE, {}).get("S") == epoch
        and (number(item.get(TTL_ATTRIBUTE)) or 0) < expires
    ]
    for start in range(0, len(stale), TRANSACTION_ITEMS):
        _extend_batch(client, table_name, uid, stale[start : start + TRANSACTION_ITEMS], expires)


def _extend_batch(client: Any, table_name: str, uid: str, keys: list[str], expires: int) -> None:
    """One transaction of conditional updates; items refused by their condition need none.

    A cancelled transaction wrote nothing, so it is sent again without the
    items whose condition said they need nothing (already as late, or gone).
    """
    for attempt in range(CONFLICT_ATTEMPTS):
        updates = [
            {
                "Update": {
                    "TableName": table_name,
                    "Key": {"pk": {"S": uid}, "sk": {"S": sk}},
                    "UpdateExpression": "SET #ttl = :expires",
                    "ConditionExpression": "attribute_exists(sk) AND "
                    "(attribute_not_exists(#ttl) OR #ttl < :expires)",
                    "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                    "ExpressionAttributeValues": {":expires": {"N": str(expires)}},
                }
            }
            for sk in keys
        ]
        try:
            client.transact_write_items(TransactItems=updates)
            return
        except Exception as error:
            codes = cancellation_codes(error) or []
            if attempt == CONFLICT_ATTEMPTS - 1 or not _RETRIED & set(codes):
                raise
            keys = [sk for sk, code in zip(keys, codes, strict=False) if code != "ConditionalCheckFailed"]
            if not keys:
                return
            if "TransactionConflict" in codes:
                pause_after_conflict(attempt)
