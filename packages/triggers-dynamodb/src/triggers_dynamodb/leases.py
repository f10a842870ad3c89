"""The session lock: a lease on the session header, taken and given back with conditional updates.

The header holds the lease: ``lease_token`` (random) and ``lease_expires``
(stamped by the holder's clock: DynamoDB has no clock a condition can read,
see :mod:`.skew`). Taking a free lease, or one's own, is one ``UpdateItem``
conditioned on :data:`FREE_OR_OURS`; taking over another holder's lease is
conditioned on :data:`FREE`, with ``:free`` the taker's clock less the
takeover margin, the same rule by which an optimistic save judges that no
lease is live (:mod:`.saving`). Renewing and releasing are conditioned on
the token, so a holder never touches a lease another took over.
"""

from __future__ import annotations

from typing import Any

from triggers_dynamodb import skew
from triggers_dynamodb.errors import (
    CONFLICT_ATTEMPTS,
    error_code,
    pause_after_conflict,
    store_errors,
)
from triggers_dynamodb.items import HEADER_SK

__all__ = ["FREE", "FREE_OR_OURS", "NAMES", "OURS", "update"]

FREE = "(attribute_not_exists(#tok) OR #exp <= :free)"
"""No lease, or one whose stamped expiry is at or before ``:free``."""

FREE_OR_OURS = "attribute_not_exists(#tok) OR #tok = :token"
OURS = "#tok = :token"

NAMES = {"#ver": "version", "#tok": "lease_token", "#exp": "lease_expires"}
"""Attribute names used in expressions (some are DynamoDB reserved words)."""


def update(
    client: Any, table_name: str, uid: str, action: str, expression: tuple[str, str],
    bind: dict[str, Any], *, ours: bool = True,
) -> tuple[bool, float | None]:
    """One conditional update of the header's lease: (applied, DynamoDB's clock at the answer).

    ``expression`` is the update and its condition. A collision with a save
    in flight (``TransactionConflict``) means "not now" when taking the lease
    (the base class polls again); renewing or releasing our own lease
    (``ours``) tries again a few times, so such a collision is never mistaken
    for a lease that ran out.
    """
    change, condition = expression
    names = {k: v for k, v in NAMES.items() if k in change + condition}
    with store_errors(f"{action} of session {uid!r}", table_name, client):
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                answer = client.update_item(
                    TableName=table_name,
                    Key={"pk": {"S": uid}, "sk": {"S": HEADER_SK}},
                    UpdateExpression=change,
                    ConditionExpression=condition,
                    ExpressionAttributeNames=names,
                    ExpressionAttributeValues=bind,
                )
                return True, skew.server_time(answer)
            except Exception as error:
                code = error_code(error)
                if code not in ("ConditionalCheckFailedException", "TransactionConflictException"):
                    raise
                if code == "ConditionalCheckFailedException" or not ours or attempt == CONFLICT_ATTEMPTS - 1:
                    return False, skew.server_time(getattr(error, "response", None))
                pause_after_conflict(attempt)
    return False, None  # pragma: no cover - the loop returns
