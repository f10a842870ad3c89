"""``DynamoDBStorageBackend``: session state in one DynamoDB table (entry point ``dynamodb``).

The hooks of :class:`~triggers.storage.TriggerStorageBackend`, each a request
or two; the concepts live in their own modules:

* :mod:`.items`: the item layout (one item collection per session) and codec.
* :mod:`.loading`: a load is one strongly consistent ``Query``, accepted only
  when it holds one version whole.
* :mod:`.saving`: a save is one ``TransactWriteItems``, conditioned on the
  version and on the lease (the holder's token, or for an optimistic save,
  no live lease), refused as a whole otherwise.
* :mod:`.leases` and :mod:`.skew`: the lock on the header, stamped by the
  callers' clocks, whose skew against DynamoDB is measured and bounded.
* :mod:`.expiry`: the ``ttl`` option and DynamoDB's Time To Live.
* :mod:`.errors`, :mod:`.clients`, :mod:`.options`, :mod:`.table`: botocore
  errors, the client per process, options, the table.

A fire (``storage.transact``, no lock) is one ``Query`` and one
``TransactWriteItems``.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

from triggers.capabilities import Capabilities
from triggers.errors import ClockSkewError, StorageError
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend
from triggers_dynamodb import clients, expiry, leases, loading, options, saving, skew, table
from triggers_dynamodb.errors import (
    CONFLICT_ATTEMPTS,
    cancellation_codes,
    cancellation_reasons,
    pause_after_conflict,
    store_errors,
)
from triggers_dynamodb.items import ACTIVE_END, HEADER_SK

__all__ = ["DynamoDBStorageBackend"]

LOAD_ATTEMPTS = 50
"""Reads of a session before a load that keeps seeing a save in flight gives up."""

MAX_UID_CHARACTERS = 512
"""Longest uid: 512 characters are at most 2,048 UTF-8 bytes, DynamoDB's partition key limit."""

MAX_RECORD_BYTES = 390_000
"""Largest record (canonical JSON); the rest of an item's 400 KB is kept for keys and names."""


class DynamoDBStorageBackend(TriggerStorageBackend):
    """Session state in one Amazon DynamoDB table, through boto3.

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``):

    ``table_name`` (required)
        The table holding every session (partition key ``pk``, sort key
        ``sk``, both strings). Create it with ``python -m triggers_dynamodb
        create-table --table-name NAME``.
    ``client``
        An existing low-level boto3 DynamoDB client (``boto3.client("dynamodb")``,
        not a resource, which converts values itself). The caller owns it.
    ``region_name`` / ``endpoint_url``
        Instead of ``client``: where DynamoDB is, e.g. ``endpoint_url=
        "http://localhost:8000"`` for DynamoDB Local. One client per
        ``(region_name, endpoint_url)`` per process is shared by every
        session. Credentials come from boto3's usual chain.
    ``ttl`` (default ``None``: sessions never expire)
        Seconds a session is kept after its last save; then it reads as a new,
        empty session and DynamoDB's Time To Live deletes its items. A
        session expires between ``ttl`` and ``2 * ttl`` after its last save
        (see :mod:`.expiry`). A process without ``ttl`` keeps a session's
        expiry as it is.
    ``max_clock_skew`` (default 1 s)
        How far this machine's clock may be from DynamoDB's. Taking the lock
        and saving without it measure it (the ``Date`` of DynamoDB's answer)
        and raise :class:`~triggers.errors.ClockSkewError` beyond it, give or
        take the header's one-second resolution; a lease counts as expired
        ``2 * (max_clock_skew + 1.25)`` seconds after the expiry it carries
        (4.5 s by default). ``None`` turns the check off (only for tests that
        simulate time with ``clock``).
    ``create_table`` (default ``False``)
        Create the table (on-demand billing, TTL enabled) if it is missing.
        Off by default so that a typo in ``table_name`` is an error, not a new
        table; without it the backend checks once per process that the table
        exists and is keyed right.

    Example::

        storage_backends.get("dynamodb", "session-42", table_name="triggers",
                             region_name="eu-west-1")
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,
        optimistic_saves=True,
        incremental_saves=True,
        partial_loads=True,
        ttl=True,
        max_uid_length=MAX_UID_CHARACTERS,
        max_record_bytes=MAX_RECORD_BYTES,
    )

    def __init__(
        self,
        uid: str,
        *,
        table_name: str | None = None,
        client: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        create_table: bool = False,
        ttl: float | None = None,
        max_clock_skew: float | None = skew.DEFAULT_MAX_CLOCK_SKEW,
        **common: Any,
    ) -> None:
        super().__init__(uid, **common)
        self.table_name = options.table_name(table_name)
        self.ttl = options.ttl(ttl)
        self.max_clock_skew = skew.validated_bound(max_clock_skew)
        options.validated_client(client, region_name, endpoint_url)  # refuse bad options now
        self._given_client = client
        self._where = (region_name, endpoint_url)
        self._seen = loading.Seen()
        self._clocks: tuple[float, float | None] | None = None
        """(this machine's clock, DynamoDB's) at the answer of the last load."""
        options.prepare(self.client, self.table_name, create=create_table)

    @property
    def client(self) -> Any:
        """This process's boto3 client, looked up at every use.

        boto3 clients pool HTTP connections; an object made before ``fork()``
        must not send requests over sockets its parent also uses, so the
        client comes from :func:`clients.client_for` (one per region, endpoint
        and process). A ``client=`` passed in is the caller's to re-create
        after a fork.
        """
        if self._given_client is not None:
            return self._given_client
        return clients.client_for(*self._where)

    # -- administration --------------------------------------------------------

    @classmethod
    def create_schema(cls, **given: Any) -> list[str]:
        """Create the table (on-demand billing, TTL enabled); idempotent."""
        name, client = options.target(given)
        return table.create_table(client, name)

    @classmethod
    def check_schema(cls, **given: Any) -> list[str]:
        """Describe the table; raise ``SchemaError`` if it is missing or keyed otherwise."""
        name, client = options.target(given)
        return table.check_table(client, name)

    @classmethod
    def session_uids(cls, **given: Any) -> Iterator[str]:
        """Every saved session's uid, expired ones left out (a ``Scan``: an operator's tool)."""
        name, client = options.target(given)
        with store_errors("list the sessions", name, client):
            pages = client.get_paginator("scan").paginate(
                TableName=name,
                FilterExpression=(
                    "sk = :header AND attribute_exists(#ver) "
                    "AND (attribute_not_exists(#sx) OR #sx > :now)"
                ),
                ExpressionAttributeNames={"#ver": "version", "#sx": "session_expires"},
                ExpressionAttributeValues={
                    ":header": {"S": HEADER_SK},
                    ":now": {"N": str(int(time.time()))},
                },
                ProjectionExpression="pk",
                ConsistentRead=True,
            )
            uids = [item["pk"]["S"] for page in pages for item in page.get("Items", [])]
        yield from uids

    # -- loading and saving ------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        with store_errors(f"load session {self.uid!r}", self.table_name, self.client):
            for attempt in range(LOAD_ATTEMPTS):
                found = self._query(scope)
                loaded = loading.assemble(self.uid, self.table_name, found, scope, self.clock(), self._seen)
                if loaded is not None:
                    stored, self._seen = loaded
                    return stored
                _wait_for_save_in_flight(attempt)
        raise StorageError(
            f"session {self.uid!r}: {LOAD_ATTEMPTS} loads in a row saw part of a save that never "
            f"completed; the items of table {self.table_name!r} for this session are inconsistent"
        )

    def _query(self, scope: LoadScope) -> list[dict[str, Any]]:
        """The session's items (the header first), strongly consistent, every page.

        A fire's ACTIVE load reads ``sk < "R"`` (header, configs, active
        instances, metadata), one page unless they exceed 1 MB. The clocks at
        the first answer are kept for an optimistic save's skew check.
        """
        request: dict[str, Any] = {
            "TableName": self.table_name,
            "KeyConditionExpression": "pk = :uid",
            "ExpressionAttributeValues": {":uid": {"S": self.uid}},
            "ConsistentRead": True,
        }
        if scope < LoadScope.FULL:
            request["KeyConditionExpression"] += " AND sk < :end"
            request["ExpressionAttributeValues"][":end"] = {"S": ACTIVE_END}
        found: list[dict[str, Any]] = []
        while True:
            page = self.client.query(**request)
            if not found:
                self._clocks = (self.clock(), skew.server_time(page))
            found += page.get("Items", [])
            if "LastEvaluatedKey" not in page:
                return found
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def _save_changes(self, changes: SessionChanges) -> None:
        now = self.clock()
        free_before = None
        if changes.is_optimistic:
            # Other holders' leases are judged by this clock: it must be in bounds.
            if self._clocks is not None:
                skew.check(self.uid, *self._clocks, self.max_clock_skew, refused="saving without the lock")
            free_before = now - skew.takeover_margin(self.max_clock_skew)
        save = saving.build(self.table_name, changes, self._seen, now=now, ttl=self.ttl,
                            free_before=free_before)
        if save.extend_to is not None:
            with store_errors(f"extend the expiry of session {self.uid!r}", self.table_name, self.client):
                expiry.extend(self.client, self.table_name, self.uid, save.generation, save.extend_to,
                              skip=save.written)
        with store_errors(f"save session {self.uid!r}", self.table_name, self.client):
            self._transact(changes, save, now=now, free_before=free_before)
        self._seen = save.seen

    def _transact(self, changes: SessionChanges, save: saving.Save, *, now: float, free_before: float | None) -> None:
        """Send the save; a refusal of the header's condition is a StaleSessionError saying why."""
        for attempt in range(CONFLICT_ATTEMPTS):
            try:
                # botocore resends a request whose answer was lost with the
                # same token, which makes it idempotent: a transaction that
                # was applied is not applied again (nor refused as stale by
                # its own first attempt). A cancelled one is a new request.
                self.client.transact_write_items(TransactItems=save.actions, ClientRequestToken=uuid.uuid4().hex)
                return
            except Exception as error:
                codes = cancellation_codes(error)
                if codes and codes[0] == "ConditionalCheckFailed":  # the header's condition
                    header = cancellation_reasons(error)[0].get("Item")
                    if saving.landed(save, header):
                        return  # botocore resent it after a lost answer; the first send landed
                    if getattr(error, "response", {}).get("ResponseMetadata", {}).get("RetryAttempts"):
                        raise saving.unknown_outcome(changes) from error
                    raise saving.refusal(changes, header, now=now, free_before=free_before) from error
                if not codes or "TransactionConflict" not in codes or attempt == CONFLICT_ATTEMPTS - 1:
                    raise
                pause_after_conflict(attempt)

    # -- leases ------------------------------------------------------------------

    def _acquire_lease(self, lease: Lease) -> bool:
        """Take a free lease (one call); take over another's only once it expired by every clock.

        Taking a free lease (or our own) is safe whatever the clocks say, and
        is one call. Its answer's ``Date`` tells this machine's skew
        (:mod:`.skew`): out of bounds, the lease just taken is given back and
        :class:`ClockSkewError` raised. A lease held by another holder is
        taken over only :func:`.skew.takeover_margin` seconds after the expiry
        it carries, so clocks within the bound never overlap.
        """
        change = "SET #tok = :token, #exp = :expires"
        bind = {":token": {"S": lease.token}, ":expires": {"N": repr(lease.expires_at)}}
        taken, store_now = self._update_lease("acquire the lock", (change, leases.FREE_OR_OURS), bind, ours=False)
        try:
            skew.check(self.uid, self.clock(), store_now, self.max_clock_skew)
        except ClockSkewError:
            if taken:
                self._release_lease(lease)
            raise
        if taken:
            return True
        free = lease.acquired_at - skew.takeover_margin(self.max_clock_skew)
        taken, _ = self._update_lease("acquire the lock", (change, leases.FREE), {**bind, ":free": {"N": repr(free)}},
                               ours=False)
        return taken

    def _renew_lease(self, lease: Lease) -> bool:
        bind = {":token": {"S": lease.token}, ":expires": {"N": repr(lease.expires_at)}}
        renewed, _ = self._update_lease("renew the lock", ("SET #exp = :expires", leases.OURS), bind)
        return renewed

    def _release_lease(self, lease: Lease) -> None:
        self._update_lease("release the lock", ("REMOVE #tok, #exp", leases.OURS), {":token": {"S": lease.token}})

    def _update_lease(
        self, action: str, expression: tuple[str, str], bind: dict[str, Any], *, ours: bool = True
    ) -> tuple[bool, float | None]:
        return leases.update(self.client, self.table_name, self.uid, action, expression, bind, ours=ours)


def _wait_for_save_in_flight(attempt: int) -> None:
    """Pause before reading a session again that was caught in the middle of a save."""
    time.sleep(min(0.2, 0.005 * 2**attempt))
