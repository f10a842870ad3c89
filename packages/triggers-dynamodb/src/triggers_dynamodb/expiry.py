"""Session expiry (option ``ttl``) with DynamoDB's Time To Live.

The header stores the session's expiry (``session_expires``); a load that
finds it passed reads an empty session. DynamoDB's Time To Live deletes items
by their ``expires_at`` (usually within days), so no item may expire before
its session: every item carries the session's expiry, and when the expiry
moves, every item gets the new one before the header does.

To keep saves incremental the expiry moves only when less than ``ttl`` is
left, to ``2 * ttl`` from then: a session expires between ``ttl`` and
``2 * ttl`` after its last save. Moving it updates the session's other items
in transactions of up to 100 conditional updates, each of which only ever
makes an item's expiry later: writers racing to extend it (optimistic saves
take no lock) never shorten it, and an item that another save deleted (a
swept tombstone) is not brought back as a bare key. A writer whose save is
then refused leaves items that expire later than their session, which is
harmless (readers go by the header). The header itself stays
:data:`HEADER_GRACE_SECONDS` longer than its session, so versions never
restart while leftover items may exist.
"""

from __future__ import annotations

import math
from typing import Any

from triggers_dynamodb.errors import (
    CONFLICT_ATTEMPTS,
    cancellation_codes,
    pause_after_conflict,
)
from triggers_dynamodb.items import HEADER_SK, TRANSACTION_ITEMS, number
from triggers_dynamodb.loading import Seen
from triggers_dynamodb.table import TTL_ATTRIBUTE

__all__ = ["HEADER_GRACE_SECONDS", "after_save", "extend"]

HEADER_GRACE_SECONDS = 30 * 86_400
"""How long a header stays in the table after its session expired."""

_RETRIED = {"ConditionalCheckFailed", "TransactionConflict"}


def after_save(seen: Seen, fresh: bool, ttl: float | None, now: float) -> tuple[int | None, bool]:
    """The session's expiry after a save, and whether every other item must get it first.

    A process without ``ttl`` keeps the session's expiry as it is.
    """
    if ttl is None:
        return (None if fresh else seen.expires), False
    if not fresh and seen.expires is not None and seen.expires - now >= ttl:
        return seen.expires, False
    return math.ceil(now + 2 * ttl), not fresh


def extend(client: Any, table_name: str, uid: str, generation: str, expires: int, *, skip: set[str]) -> None:
    """Give every item of the session's ``generation`` (but ``skip``) at least ``expires``."""
    pages = client.get_paginator("query").paginate(
        TableName=table_name,
        KeyConditionExpression="pk = :uid",
        ExpressionAttributeValues={":uid": {"S": uid}},
        ProjectionExpression="sk, g, #ttl",
        ExpressionAttributeNames={"#ttl": TTL_ATTRIBUTE},
        ConsistentRead=True,
    )
    stale = [
        item["sk"]["S"]
        for page in pages
        for item in page.get("Items", [])
        if item["sk"]["S"] != HEADER_SK
        and item["sk"]["S"] not in skip
        and item.get("g", {}).get("S") == generation
        and (number(item.get(TTL_ATTRIBUTE)) or 0) < expires
    ]
    for start in range(0, len(stale), TRANSACTION_ITEMS):
        _extend_batch(client, table_name, uid, stale[start : start + TRANSACTION_ITEMS], expires)


def _extend_batch(client: Any, table_name: str, uid: str, keys: list[str], expires: int) -> None:
    """One transaction of conditional updates; items refused by their condition need none."""
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
            # Already as late, or gone: leave those out and send the rest again.
            keys = [sk for sk, code in zip(keys, codes, strict=False) if code != "ConditionalCheckFailed"]
            if not keys:
                return
            if "TransactionConflict" in codes:
                pause_after_conflict(attempt)
