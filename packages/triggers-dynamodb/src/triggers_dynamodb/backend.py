"""``DynamoDBStorageBackend``: session state in one DynamoDB table (entry point ``dynamodb``).

How each guarantee is kept (the item layout is described in :mod:`.items`):

* **Load**: a strongly consistent ``GetItem`` of the session header, then one
  strongly consistent, paginated ``Query`` of the session's items (the key
  range ``sk < "R"`` for a fire, the whole partition for a full load). No
  scans, no index.
* **A load never sees half a save.** DynamoDB applies a transaction's items
  one by one as far as a ``Query`` is concerned, so the loader checks what it
  read: every item carries the version that wrote it, and the header says how
  many items its version wrote in each key range. The load is whole when no
  item is newer than the header read before the query, and exactly that many
  items carry the header's version; otherwise it is read again (a save in
  flight finishes in milliseconds). Deletions are written as tombstones for
  the same reason: an absent item could not be counted.
* **Lock**: the header carries a lease (random token and expiry), taken with
  one conditional ``UpdateItem`` when no lease is there or it is ours.
  DynamoDB has no clock a condition can read, so expiry is stamped by the
  callers' clocks; the skew of each is measured against DynamoDB's ``Date``
  header and refused beyond ``max_clock_skew`` (:mod:`.skew`), and another
  holder's lease is taken over (a second conditional update) only once it
  expired by every clock within that bound. Renewal and release are
  conditional on the token.
* **Save**: one ``TransactWriteItems``: an update of the header from the
  loaded version to the next, conditioned on that version *and* the lease
  token (the fence), plus a ``Put`` of every changed record. A stale holder's
  save is cancelled as a whole and reported as
  :class:`~triggers.errors.StaleSessionError`. Saves that would not fit one
  transaction (100 items, 4 MB) are refused before anything is written.
* **Errors**: botocore's standard retry mode retries throttling and transient
  errors; everything else reaches the caller as a
  :class:`~triggers.errors.StorageError` naming the session, the table and
  the endpoint, with the botocore error as its cause.
"""

from __future__ import annotations

import math
import threading
import time
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from triggers import values
from triggers.capabilities import Capabilities
from triggers.errors import (
    ClockSkewError,
    ConfigurationError,
    CorruptSessionError,
    SessionLimitError,
    StaleSessionError,
    StorageError,
)
from triggers.locking import Lease
from triggers.storage import (
    LoadScope,
    SessionChanges,
    StoredSession,
    TriggerStorageBackend,
    is_active_record,
)
from triggers_dynamodb import clients, skew, table
from triggers_dynamodb.errors import error_code, store_errors
from triggers_dynamodb.items import (
    ACTIVE_END,
    HEADER_SK,
    ITEM_BYTES_LIMIT,
    Item,
    Kind,
    StoredItem,
    item_bytes,
    parse_record_item,
    record_item,
    tombstone_item,
)
from triggers_dynamodb.table import TTL_ATTRIBUTE

__all__ = ["DynamoDBStorageBackend"]

TRANSACTION_ITEMS = 100
"""Most items one ``TransactWriteItems`` may touch (the header included)."""

TRANSACTION_BYTES = 4_000_000
"""Most bytes one ``TransactWriteItems`` may carry (AWS: 4 MB)."""

LOAD_ATTEMPTS = 50
"""Reads of a session before a load that keeps seeing a save in flight gives up."""

SAVE_ATTEMPTS = 5
"""Tries of a save that DynamoDB cancelled for a conflict with another transaction."""

MAX_UID_CHARACTERS = 512
"""Longest uid: 512 characters are at most 2,048 UTF-8 bytes, DynamoDB's partition key limit."""

MAX_RECORD_BYTES = 390_000
"""Largest record (canonical JSON); the rest of an item's 400 KB is kept for keys and names."""

HEADER_GRACE_SECONDS = 30 * 86_400
"""How long a header stays in the table after its session expired (see _header_update)."""

_prepared: set[tuple[int, str]] = set()
"""(client, table) pairs created or checked in this process."""
_prepared_mutex = threading.Lock()

# Attribute names used in expressions (some are DynamoDB reserved words).
_NAMES = {"#ver": "version", "#tok": "lease_token", "#exp": "lease_expires"}


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
        empty session and DynamoDB's Time To Live deletes its items. To keep
        saves incremental, the expiry moves (every item's with it) only when
        less than ``ttl`` is left, to ``2 * ttl`` from then: a session expires
        between ``ttl`` and ``2 * ttl`` after its last save. A process
        without ``ttl`` keeps a session's expiry as it is.
    ``max_clock_skew`` (default 1 s)
        How far this machine's clock may be from DynamoDB's. Taking the lock
        measures it (the ``Date`` of DynamoDB's answer) and raises
        :class:`~triggers.errors.ClockSkewError` beyond it, give or take the
        header's one-second resolution; an expired lease is taken over
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
        **options: Any,
    ) -> None:
        super().__init__(uid, **options)
        self.table_name = _table_name(table_name)
        self.ttl = _ttl(ttl)
        self.max_clock_skew = skew.validated_bound(max_clock_skew)
        _client(client, region_name, endpoint_url)  # refuse bad options now
        self._given_client = client
        self._where = (region_name, endpoint_url)
        self._seen = _Seen()
        _prepare(self.client, self.table_name, create=create_table)

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
    def create_schema(cls, **options: Any) -> list[str]:
        """Create the table (on-demand billing, TTL enabled); idempotent."""
        name, client = _target(options)
        return table.create_table(client, name)

    @classmethod
    def check_schema(cls, **options: Any) -> list[str]:
        """Describe the table; raise ``SchemaError`` if it is missing or keyed otherwise."""
        name, client = _target(options)
        return table.check_table(client, name)

    @classmethod
    def session_uids(cls, **options: Any) -> Iterator[str]:
        """Every saved session's uid, expired ones left out (a ``Scan``: an operator's tool)."""
        name, client = _target(options)
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

    # -- loading -----------------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        with store_errors(f"load session {self.uid!r}", self.table_name, self.client):
            for attempt in range(LOAD_ATTEMPTS):
                header = self._read_header()
                found = self._query(scope)
                loaded = self._whole_load(header, found, scope)
                if loaded is not None:
                    return loaded
                _wait_for_save_in_flight(attempt)
        raise StorageError(
            f"session {self.uid!r}: {LOAD_ATTEMPTS} loads in a row saw part of a save that never "
            f"completed; the items of table {self.table_name!r} for this session are inconsistent"
        )

    def _read_header(self) -> dict[str, Any]:
        response = self.client.get_item(
            TableName=self.table_name, Key=self._key(HEADER_SK), ConsistentRead=True
        )
        item: dict[str, Any] = response.get("Item", {})
        return item

    def _query(self, scope: LoadScope) -> list[dict[str, Any]]:
        condition = "pk = :uid"
        bind: dict[str, Any] = {":uid": {"S": self.uid}}
        if scope < LoadScope.FULL:
            condition += " AND sk < :end"
            bind[":end"] = {"S": ACTIVE_END}
        pages = self.client.get_paginator("query").paginate(
            TableName=self.table_name,
            KeyConditionExpression=condition,
            ExpressionAttributeValues=bind,
            ConsistentRead=True,
        )
        return [item for page in pages for item in page.get("Items", [])]

    def _whole_load(
        self, header: Mapping[str, Any], found: list[dict[str, Any]], scope: LoadScope
    ) -> StoredSession | None:
        """The session, or None if what was read is not one version of it."""
        version = _number(header.get("version"))
        generation = header.get("g", {}).get("S")
        expires = _number(header.get("session_expires"))
        if version is not None and expires is not None and expires <= self.clock():
            self._seen = _Seen(version, generation, expires, expired=True)
            return StoredSession(configs={}, instances={}, metadata={}, version=version)
        written = {Kind.ACTIVE: _number(header.get("wa")) or 0, Kind.RESOLVED: _number(header.get("wr")) or 0}
        seen = {Kind.ACTIVE: 0, Kind.RESOLVED: 0}
        records: dict[str, dict[str, Any]] = {Kind.CONFIG: {}, Kind.ACTIVE: {}, Kind.METADATA: {}}
        places: dict[str, str] = {}
        tombstones: dict[str, StoredItem] = {}
        for raw in found:
            if raw["sk"]["S"] == HEADER_SK:
                if _number(raw.get("version")) != version:
                    return None  # a save committed between the two reads
                continue
            item = self._parse(raw)
            if version is None or item.version > version:
                return None  # an item of a save whose header we did not see
            if item.generation != generation:
                continue  # left over from the session's life before it expired
            if item.version == version:
                seen[Kind.RESOLVED if item.kind == Kind.RESOLVED else Kind.ACTIVE] += 1
            if item.is_tombstone:
                tombstones[item.sk] = item
                continue
            if item.kind == Kind.RESOLVED:
                records[Kind.ACTIVE][item.name] = self._record(item)
                places[item.name] = Kind.RESOLVED
            else:
                records[item.kind][item.name] = self._record(item)
                if item.kind == Kind.ACTIVE:
                    places[item.name] = Kind.ACTIVE
        if seen[Kind.ACTIVE] != written[Kind.ACTIVE]:
            return None
        if scope >= LoadScope.FULL and seen[Kind.RESOLVED] != written[Kind.RESOLVED]:
            return None
        if (self._seen.version, self._seen.generation) != (version, generation):
            self._seen = _Seen(version, generation, expires)
        self._seen.places.update(places)
        self._seen.tombstones.update(tombstones)
        return StoredSession(
            configs=records[Kind.CONFIG],
            instances=records[Kind.ACTIVE],
            metadata=records[Kind.METADATA],
            version=version,
            complete=scope >= LoadScope.FULL,
        )

    def _parse(self, raw: Mapping[str, Any]) -> StoredItem:
        try:
            item = parse_record_item(raw)
            if item.kind not in (Kind.CONFIG, Kind.ACTIVE, Kind.METADATA, Kind.RESOLVED):
                raise ValueError(f"unknown sort key prefix {item.kind!r}")
            return item
        except (KeyError, ValueError, TypeError, AttributeError) as error:
            raise self._corrupt(raw, error) from error

    def _record(self, item: StoredItem) -> Any:
        try:
            return item.record()
        except ValueError as error:  # JSONDecodeError included
            raise self._corrupt({"sk": {"S": item.sk}}, error) from error

    def _corrupt(self, raw: Mapping[str, Any], error: Exception) -> CorruptSessionError:
        sk = raw.get("sk", {}).get("S", "?")
        return CorruptSessionError(
            f"session {self.uid!r}: item {sk!r} of table {self.table_name!r} is not one this "
            f"backend wrote ({type(error).__name__}: {error}); it was left untouched"
        )

    # -- saving ------------------------------------------------------------------

    def _save_changes(self, changes: SessionChanges) -> None:
        seen = self._seen
        if seen.version != changes.base_version:  # pragma: no cover - the base class loads first
            raise StaleSessionError(
                f"session {self.uid!r}: saving version {changes.base_version} but "
                f"version {seen.version} was loaded; nothing was written"
            )
        fresh = seen.generation is None or seen.expired
        generation = uuid.uuid4().hex[:16] if fresh else seen.generation
        assert generation is not None
        expires, extend = self._expiry(seen, fresh)
        version = changes.new_version
        places = {} if fresh else seen.places

        def record(kind: str, name: str, body: values.JSONValue) -> Item:
            return record_item(
                self.uid, kind, name, body, version, generation=generation, expires_at=expires
            )

        def tombstone(kind: str, name: str) -> Item:
            return tombstone_item(
                self.uid, kind, name, version, generation=generation, expires_at=expires
            )

        puts: list[tuple[str, Item]] = []  # (what, item), for limits and messages
        moved: dict[str, str] = {}
        for name, body in changes.configs.items():
            puts.append((f"task {name!r}", record(Kind.CONFIG, name, body)))
        for name, body in changes.instances.items():
            place = Kind.ACTIVE if is_active_record(body) else Kind.RESOLVED
            before = places.get(name)
            if before is not None and before != place:
                puts.append((f"instance {name!r}", tombstone(before, name)))
            puts.append((f"instance {name!r}", record(place, name, body)))
            moved[name] = place
        for key, value in changes.metadata.items():
            puts.append((f"metadata[{key!r}]", record(Kind.METADATA, key, value)))
        for key in changes.deleted_metadata:
            puts.append((f"metadata[{key!r}]", tombstone(Kind.METADATA, key)))
        self._check_transaction(puts)
        written = {item["sk"]["S"] for _, item in puts}
        if extend:
            assert expires is not None
            self._extend_expiry(generation, expires, skip=written)
        header = self._header_update(changes, puts, generation, expires)
        actions: list[dict[str, Any]] = [{"Update": header}]
        actions += [{"Put": {"TableName": self.table_name, "Item": item}} for _, item in puts]
        # Tombstones of earlier saves are no longer needed by any reader;
        # delete them while there is room in the transaction.
        tombstones = {} if fresh else seen.tombstones
        swept = [sk for sk in tombstones if sk not in written][: TRANSACTION_ITEMS - len(actions)]
        actions += [{"Delete": {"TableName": self.table_name, "Key": self._key(sk)}} for sk in swept]
        self._transact(changes, actions)
        after = _Seen(version, generation, expires, places={**places, **moved})
        after.tombstones = {sk: t for sk, t in tombstones.items() if sk not in swept}
        for _, item in puts:
            if "body" not in item:
                after.tombstones[item["sk"]["S"]] = parse_record_item(item)
        self._seen = after

    def _expiry(self, seen: _Seen, fresh: bool) -> tuple[int | None, bool]:
        """The session's expiry after this save, and whether every item must get it."""
        if self.ttl is None:
            return (None if fresh else seen.expires), False
        now = self.clock()
        if not fresh and seen.expires is not None and seen.expires - now >= self.ttl:
            return seen.expires, False
        return math.ceil(now + 2 * self.ttl), not fresh

    def _extend_expiry(self, generation: str, expires: int, *, skip: set[str]) -> None:
        """Give every item of the session the new expiry, before the header gets it.

        Items never expire before their header, so a session is never seen
        with part of its items deleted by DynamoDB. Runs under the lease,
        in transactions of up to 100 items; a holder that crashes halfway
        leaves the session's expiry where it was.
        """
        with store_errors(f"extend the expiry of session {self.uid!r}", self.table_name, self.client):
            pages = self.client.get_paginator("query").paginate(
                TableName=self.table_name,
                KeyConditionExpression="pk = :uid",
                ExpressionAttributeValues={":uid": {"S": self.uid}},
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
                and (_number(item.get(TTL_ATTRIBUTE)) or 0) < expires
            ]
            for start in range(0, len(stale), TRANSACTION_ITEMS):
                updates = [
                    {
                        "Update": {
                            "TableName": self.table_name,
                            "Key": self._key(sk),
                            "UpdateExpression": "SET #ttl = :expires",
                            "ExpressionAttributeNames": {"#ttl": TTL_ATTRIBUTE},
                            "ExpressionAttributeValues": {":expires": {"N": str(expires)}},
                        }
                    }
                    for sk in stale[start : start + TRANSACTION_ITEMS]
                ]
                self.client.transact_write_items(TransactItems=updates)

    def _check_transaction(self, puts: list[tuple[str, Item]]) -> None:
        """Refuse, before writing anything, a save DynamoDB could not take whole."""
        total = 0
        for what, item in puts:
            size = item_bytes(item)
            if size > ITEM_BYTES_LIMIT:
                raise SessionLimitError(
                    f"session {self.uid!r}: {what} takes {size} bytes as a DynamoDB item; "
                    f"items hold at most {ITEM_BYTES_LIMIT}. Nothing was written"
                )
            total += size
        if len(puts) + 1 > TRANSACTION_ITEMS:
            raise SessionLimitError(
                f"session {self.uid!r}: this save writes {len(puts)} items; one DynamoDB "
                f"transaction holds the session header and at most {TRANSACTION_ITEMS - 1} more. "
                "Nothing was written: save in smaller steps (for example every 90 new instances)"
            )
        if total > TRANSACTION_BYTES:
            raise SessionLimitError(
                f"session {self.uid!r}: this save writes {total} bytes; one DynamoDB transaction "
                f"carries at most {TRANSACTION_BYTES}. Nothing was written: save in smaller steps"
            )

    def _header_update(
        self,
        changes: SessionChanges,
        puts: list[tuple[str, Item]],
        generation: str,
        expires: int | None,
    ) -> dict[str, Any]:
        resolved = sum(1 for _, item in puts if item["sk"]["S"].startswith(Kind.RESOLVED))
        bind: dict[str, Any] = {
            ":new": {"N": str(changes.new_version)},
            ":wa": {"N": str(len(puts) - resolved)},
            ":wr": {"N": str(resolved)},
            ":gen": {"S": generation},
            ":token": {"S": changes.lease_token},
        }
        if changes.base_version is None:
            same_version = "attribute_not_exists(#ver)"
        else:
            same_version = "#ver = :base"
            bind[":base"] = {"N": str(changes.base_version)}
        update = "SET #ver = :new, wa = :wa, wr = :wr, g = :gen"
        if expires is None:
            update += " REMOVE #sx, #ttl"
        else:
            # The header outlives its items in the table (not as a session),
            # so versions never restart while leftover items may still exist.
            update += ", #sx = :expires, #ttl = :deleted"
            bind[":expires"] = {"N": str(expires)}
            bind[":deleted"] = {"N": str(expires + HEADER_GRACE_SECONDS)}
        return {
            "TableName": self.table_name,
            "Key": self._key(HEADER_SK),
            "UpdateExpression": update,
            "ConditionExpression": f"#tok = :token AND {same_version}",
            "ExpressionAttributeNames": {
                "#ver": "version",
                "#tok": "lease_token",
                "#sx": "session_expires",
                "#ttl": TTL_ATTRIBUTE,
            },
            "ExpressionAttributeValues": bind,
            "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
        }

    def _transact(self, changes: SessionChanges, actions: list[dict[str, Any]]) -> None:
        with store_errors(f"save session {self.uid!r}", self.table_name, self.client):
            for attempt in range(SAVE_ATTEMPTS):
                # botocore resends a request whose answer was lost with the
                # same token, which makes it idempotent: a transaction that
                # was applied is not applied again (nor refused as stale by
                # its own first attempt). A cancelled one is a new request.
                token = uuid.uuid4().hex
                try:
                    self.client.transact_write_items(TransactItems=actions, ClientRequestToken=token)
                    return
                except Exception as error:
                    if error_code(error) != "TransactionCanceledException":
                        raise
                    reasons: list[dict[str, Any]] = getattr(error, "response", {}).get(
                        "CancellationReasons", []
                    )
                    codes = [reason.get("Code", "None") for reason in reasons]
                    if codes and codes[0] == "ConditionalCheckFailed":
                        raise self._refusal(changes, reasons[0].get("Item")) from error
                    if "TransactionConflict" not in codes or attempt == SAVE_ATTEMPTS - 1:
                        raise
                    time.sleep(0.01 * 2**attempt)

    def _refusal(self, changes: SessionChanges, header: Mapping[str, Any] | None) -> StaleSessionError:
        """Why the fence refused a save (from the header as it was)."""
        header = header or {}
        token = header.get("lease_token", {}).get("S")
        if token != changes.lease_token:
            reason = "the lease was taken over by another holder"
        else:
            reason = (
                f"the stored version is {_number(header.get('version'))}, this holder loaded "
                f"{changes.base_version}"
            )
        return StaleSessionError(f"session {self.uid!r}: {reason}; nothing was written")

    # -- leases ------------------------------------------------------------------

    def _acquire_lease(self, lease: Lease) -> bool:
        """Take a free lease (one call); take over another's only once it expired by every clock.

        Taking a free lease (or our own) is safe whatever the clocks say, and
        is the one call of an uncontended fire. Its answer's ``Date`` tells
        this machine's skew (:mod:`.skew`): out of bounds, the lease just
        taken is given back and :class:`ClockSkewError` raised. A lease held by
        another holder is taken over only :func:`.skew.takeover_margin` seconds
        after the expiry it carries, so clocks within the bound never overlap.
        """
        bind = {":token": {"S": lease.token}, ":expires": {"N": repr(lease.expires_at)}}
        taken, store_now = self._lease_update(
            "acquire the lock",
            "SET #tok = :token, #exp = :expires",
            "attribute_not_exists(#tok) OR #tok = :token",
            bind,
            ours=False,
        )
        try:
            skew.check(self.uid, self.clock(), store_now, self.max_clock_skew)
        except ClockSkewError:
            if taken:
                self._release_lease(lease)
            raise
        if taken:
            return True
        expired_before = lease.acquired_at - skew.takeover_margin(self.max_clock_skew)
        taken, _ = self._lease_update(
            "acquire the lock",
            "SET #tok = :token, #exp = :expires",
            "attribute_not_exists(#tok) OR #exp <= :expired",
            {**bind, ":expired": {"N": repr(expired_before)}},
            ours=False,
        )
        return taken

    def _renew_lease(self, lease: Lease) -> bool:
        renewed, _ = self._lease_update(
            "renew the lock",
            "SET #exp = :expires",
            "#tok = :token",
            {":token": {"S": lease.token}, ":expires": {"N": repr(lease.expires_at)}},
        )
        return renewed

    def _release_lease(self, lease: Lease) -> None:
        self._lease_update("release the lock", "REMOVE #tok, #exp", "#tok = :token",
                           {":token": {"S": lease.token}})

    def _lease_update(
        self, action: str, update: str, condition: str, bind: dict[str, Any], *, ours: bool = True
    ) -> tuple[bool, float | None]:
        """One conditional update of the header's lease: (applied, DynamoDB's clock at the answer).

        A collision with a save in flight (``TransactionConflict``) means "not
        now" when taking the lease (the base class polls again); renewing or
        releasing our own lease (``ours``) tries again a few times, so such a collision
        is never mistaken for a lease that ran out.
        """
        names = {k: v for k, v in _NAMES.items() if k in update + condition}
        with store_errors(f"{action} of session {self.uid!r}", self.table_name, self.client):
            for attempt in range(SAVE_ATTEMPTS):
                try:
                    answer = self.client.update_item(
                        TableName=self.table_name,
                        Key=self._key(HEADER_SK),
                        UpdateExpression=update,
                        ConditionExpression=condition,
                        ExpressionAttributeNames=names,
                        ExpressionAttributeValues=bind,
                    )
                    return True, skew.server_time(answer)
                except Exception as error:
                    code = error_code(error)
                    if code == "ConditionalCheckFailedException":
                        return False, skew.server_time(getattr(error, "response", None))
                    if code != "TransactionConflictException":
                        raise
                    if not ours or attempt == SAVE_ATTEMPTS - 1:
                        return False, skew.server_time(getattr(error, "response", None))
                    time.sleep(0.01 * 2**attempt)
        return False, None  # pragma: no cover - the loop returns

    def _key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": self.uid}, "sk": {"S": sk}}


@dataclass
class _Seen:
    """What this object last loaded or saved of its session, beyond the records.

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


def _ttl(ttl: object) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not math.isfinite(ttl) or ttl <= 0:
        raise ConfigurationError(f"ttl must be a positive number of seconds or None, not {ttl!r}")
    return float(ttl)


def _wait_for_save_in_flight(attempt: int) -> None:
    """Pause before reading a session again that was caught in the middle of a save."""
    time.sleep(min(0.2, 0.005 * 2**attempt))


def _number(attribute: Mapping[str, Any] | None) -> int | None:
    if attribute is None:
        return None
    return int(attribute["N"])


def _table_name(name: object) -> str:
    if not isinstance(name, str) or not 3 <= len(name) <= 255:
        raise ConfigurationError(
            f"the dynamodb backend needs table_name= (a DynamoDB table name of 3-255 "
            f"characters), got {name!r}"
        )
    return name


def _client(client: Any, region_name: str | None, endpoint_url: str | None) -> Any:
    if client is not None:
        if region_name is not None or endpoint_url is not None:
            raise ConfigurationError(
                "the dynamodb backend takes either client= or region_name=/endpoint_url=, not both"
            )
        if hasattr(client, "Table"):
            # A resource's client converts Python values itself and would
            # garble the typed attribute values this backend sends.
            raise ConfigurationError(
                "client= must be a low-level client (boto3.client('dynamodb')), not a "
                "boto3 resource"
            )
        model = getattr(getattr(client, "meta", None), "service_model", None)
        if getattr(model, "service_name", None) != "dynamodb":
            raise ConfigurationError(
                f"client= must be a boto3 DynamoDB client, got {type(client).__name__}"
            )
        return client
    for option, value in (("region_name", region_name), ("endpoint_url", endpoint_url)):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{option}= must be a str, got {type(value).__name__}")
    try:
        return clients.client_for(region_name, endpoint_url)
    except Exception as error:  # botocore: no region, malformed endpoint...
        raise ConfigurationError(
            f"could not make a DynamoDB client (region_name={region_name!r}, "
            f"endpoint_url={endpoint_url!r}): {error}"
        ) from error


def _target(options: Mapping[str, Any]) -> tuple[str, Any]:
    """Table name and client from backend options (for the class-level administration)."""
    return (
        _table_name(options.get("table_name")),
        _client(options.get("client"), options.get("region_name"), options.get("endpoint_url")),
    )


def _prepare(client: Any, table_name: str, *, create: bool) -> None:
    """Create or check the table once per process, before the first session uses it."""
    marker = (id(client), table_name)
    if marker in _prepared:
        return
    with _prepared_mutex:
        if marker in _prepared:
            return
        if create:
            table.create_table(client, table_name)
        else:
            table.check_table(client, table_name)
        _prepared.add(marker)
