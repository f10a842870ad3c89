"""The session lock: a lease in the header, written and judged on the server's clock.

The header holds a random token, an expiry (``$$NOW + ttl``, judged against
``$$NOW``) and the logical session id (``lsid``) in which the holder runs its
save transactions. Taking the lease reads the header first
(:func:`~triggers_mongo.loading.read_header`) and writes it only when the
lease is free or expired, with one conditional upsert: if another process
took it in between, the upsert's insert collides with ``_id`` and loses.
Reading first keeps a waiter from queueing writes behind a live holder's
open transaction.

A holder that dies inside a save transaction leaves it open, and its
uncommitted write of the header makes every other write of the header wait
(SecantusDB waits until the transaction ends, which it never does by itself;
``mongod`` aborts it after ``transactionLifetimeLimitSeconds``). So whoever
finds an expired lease naming an ``lsid`` (a lock taker, or an optimistic
writer) first ends that session with ``killSessions``, which aborts the
transaction on both servers.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import (
    DuplicateKeyError,
    ExecutionTimeout,
    NetworkTimeout,
    OperationFailure,
    PyMongoError,
)

from triggers.locking import Lease
from triggers_mongo import layout
from triggers_mongo.loading import LEASE_EXPIRES, NOW
from triggers_mongo.writing import guarded, moment, refused_because

__all__ = ["end_abandoned_session", "release", "renew", "take"]

Document = dict[str, Any]

logger = logging.getLogger(__name__)


def take(
    collection: Collection[Document], lease: Lease, lsid: Any, *, session_ttl: float | None
) -> bool:
    """Write ``lease`` if the stored one is free or expired; False if another holder won.

    For a new session this inserts the header (version ``None``, a fresh
    random ``key``): an upsert's fields only take effect where the header
    has none of its own, as ``$setOnInsert`` has no pipeline form.
    """
    fields: Document = {
        "lease_token": {"$literal": lease.token},
        "lease_expires": {"$add": [NOW, lease.ttl]},
        "lease_session": {"$literal": lsid},
    }
    new_header: Document = {"uid": lease.uid, "active": True, "seq": layout.SEQ_HEADER,
                            "key": secrets.token_hex(16), "version": None, "writer": None,
                            "settled": None}
    if session_ttl is not None:
        new_header["expires_at"] = moment(lease.acquired_at + session_ttl)
    for name, value in new_header.items():
        fields[name] = {"$ifNull": [f"${name}", {"$literal": value}]}
    held = {"$cond": [{"$gt": [LEASE_EXPIRES, NOW]}, "the lease is held", None]}
    try:
        collection.update_one({"_id": lease.uid}, guarded(held, fields), upsert=True)
    except DuplicateKeyError:
        return False  # another holder inserted the header since the read
    except OperationFailure as error:
        if refused_because(error) is None:
            raise
        return False  # another holder took it since the read
    return True


def renew(collection: Collection[Document], lease: Lease) -> bool:
    """Extend ``lease`` from now; False if it was taken over."""
    taken = {"$cond": [{"$eq": ["$lease_token", lease.token]}, None, "taken over"]}
    try:
        collection.update_one(
            {"_id": lease.uid}, guarded(taken, {"lease_expires": {"$add": [NOW, lease.ttl]}})
        )
    except OperationFailure as error:
        if refused_because(error) is None:
            raise
        return False
    return True


def release(collection: Collection[Document], lease: Lease) -> None:
    """Clear ``lease`` if it is still the stored one."""
    mine = {"$eq": ["$lease_token", lease.token]}
    cleared = {"lease_token": None, "lease_expires": 0.0, "lease_session": None}
    collection.update_one({"_id": lease.uid}, [{"$set": {
        name: {"$cond": [mine, {"$literal": value}, f"${name}"]} for name, value in cleared.items()
    }}])


def end_abandoned_session(client: MongoClient[Document], lsid: Any, uid: str) -> None:
    """Abort the transaction (if any) of an expired holder's session: ``killSessions``.

    Best effort: a server that refuses (no privilege, an older server)
    leaves the next write bounded by its deadline instead.
    """
    try:
        client.admin.command("killSessions", [lsid])
    except PyMongoError as error:
        if isinstance(error, ExecutionTimeout | NetworkTimeout):
            raise
        logger.warning(
            "session %r: could not end the session of the expired lock holder: %s", uid, error
        )
