"""The session lock: a lease on the session header, taken and given back with conditional updates.

The header holds the lease: ``lease_token`` (random) and ``lease_expires``
(stamped by the holder's clock: DynamoDB has no clock a condition can read,
see :mod:`.skew`). Taking a free lease, or one's own, is one ``UpdateItem``
conditioned on :data:`FREE_OR_OURS`; taking over another holder's lease is
conditioned on :data:`FREE`, with ``:free`` the taker's clock less the
takeover margin, the same rule by which an optimistic save judges that no
lease is live (:mod:`.saving`). Renewing and releasing are conditioned on
the token, so a holder never touches a lease another took over.

A collision with a save in flight on the header (``TransactionConflict``)
means "not now" when taking the lease (the core polls again); renewing or
releasing raises it, and the core tries again (it is transient, see
:func:`.errors.is_transient`), so such a collision is never mistaken for a
lease that ran out.
"""

from __future__ import annotations

from contextlib import suppress
from typing import Any

from triggers.errors import ClockSkewError
from triggers.locking import Clock, Lease
from triggers_dynamodb import skew
from triggers_dynamodb.errors import DRIVER_ERRORS, error_code
from triggers_dynamodb.items import HEADER_SK

__all__ = ["FREE", "FREE_OR_OURS", "NAMES", "OURS", "release", "renew", "take"]

FREE = "(attribute_not_exists(#tok) OR #exp <= :free)"
"""No lease, or one whose stamped expiry is at or before ``:free``."""

FREE_OR_OURS = "attribute_not_exists(#tok) OR #tok = :token"
OURS = "#tok = :token"

NAMES = {"#ver": "version", "#tok": "lease_token", "#exp": "lease_expires"}
"""Attribute names used in expressions (some are DynamoDB reserved words)."""

_TAKE = "SET #tok = :token, #exp = :expires"


def take(client: Any, table_name: str, uid: str, lease: Lease, clock: Clock, bound: float | None) -> bool:
    """Take a free lease (one call); take over another's only once it expired by every clock.

    Taking a free lease (or our own) is safe whatever the clocks say, and
    is one call. Its answer's ``Date`` tells this machine's skew
    (:mod:`.skew`): out of bounds, the lease just taken is given back and
    :class:`ClockSkewError` raised. A lease held by another holder is
    taken over only :func:`.skew.takeover_margin` seconds after the expiry
    it carries, so clocks within the bound never overlap.
    """
    bind = {":token": {"S": lease.token}, ":expires": {"N": repr(lease.expires_at)}}
    taken, store_now = _update(client, table_name, uid, (_TAKE, FREE_OR_OURS), bind, taking=True)
    try:
        skew.check(uid, clock(), store_now, bound)
    except ClockSkewError:
        if taken:
            # Given back at once; should that fail, it expires by itself, and
            # the clock is what the caller must hear about.
            with suppress(*DRIVER_ERRORS):
                release(client, table_name, uid, lease)
        raise
    if taken:
        return True
    bind[":free"] = {"N": repr(lease.acquired_at - skew.takeover_margin(bound))}
    taken, _ = _update(client, table_name, uid, (_TAKE, FREE), bind, taking=True)
    return taken


def renew(client: Any, table_name: str, uid: str, lease: Lease) -> bool:
    """Move our lease's expiry; False if another holder took it over."""
    bind = {":token": {"S": lease.token}, ":expires": {"N": repr(lease.expires_at)}}
    renewed, _ = _update(client, table_name, uid, ("SET #exp = :expires", OURS), bind)
    return renewed


def release(client: Any, table_name: str, uid: str, lease: Lease) -> None:
    """Give our lease back, unless another holder took it over meanwhile."""
    _update(client, table_name, uid, ("REMOVE #tok, #exp", OURS), {":token": {"S": lease.token}})


def _update(
    client: Any, table_name: str, uid: str, expression: tuple[str, str], bind: dict[str, Any],
    *, taking: bool = False,
) -> tuple[bool, float | None]:
    """One conditional update of the header's lease: (applied, DynamoDB's clock at the answer)."""
    change, condition = expression
    names = {k: v for k, v in NAMES.items() if k in change + condition}
    try:
        answer = client.update_item(
            TableName=table_name,
            Key={"pk": {"S": uid}, "sk": {"S": HEADER_SK}},
            UpdateExpression=change,
            ConditionExpression=condition,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=bind,
        )
    except Exception as error:
        code = error_code(error)
        if code == "ConditionalCheckFailedException" or (taking and code == "TransactionConflictException"):
            return False, skew.server_time(getattr(error, "response", None))
        raise
    return True, skew.server_time(answer)
