"""``DynamoDBStore``: one DynamoDB table of sessions, configured once per process.

What belongs to the table rather than to one session: the options, parsed
and checked once; the boto3 client (one per configuration and process, see
:mod:`.clients`); the table, created or checked once before the first session
uses it (:meth:`DynamoDBStore.prepare`); how botocore fails (:mod:`.errors`);
the administration (``create_schema``, ``check_schema``, ``session_uids``);
and the session operations, each in its own module: :mod:`.loading`,
:mod:`.saving`, :mod:`.leases`.

The store is shared by every session object of the process, but a save must
know what its session object last loaded (where each instance lives, the
session's epoch, the tombstones to sweep, the clocks at the answer) and by
which clock that object goes (the ``clock`` option). That is the object's
:class:`~.loading.SessionView`, passed with each load, save and lease
taking; called without one (as by a caller of the bare store), an operation
starts from nothing and a save reads the session first.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from typing import Any

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, TriggersError
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession
from triggers.stores import Store, validated_session_ttl
from triggers_dynamodb import clients, errors, leases, loading, options, saving, skew, table
from triggers_dynamodb.items import HEADER_SK
from triggers_dynamodb.loading import SessionView

__all__ = ["MAX_RECORD_BYTES", "MAX_UID_CHARACTERS", "DynamoDBStore"]

MAX_UID_CHARACTERS = 512
"""Longest uid: 512 characters are at most 2,048 UTF-8 bytes, DynamoDB's partition key limit."""

MAX_RECORD_BYTES = 390_000
"""Largest record (canonical JSON); the rest of an item's 400 KB is kept for keys and names."""


class DynamoDBStore(Store):
    """One DynamoDB table holding every session (the options are documented on
    :class:`~triggers_dynamodb.DynamoDBStorageBackend`)."""

    capabilities = Capabilities(
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
    driver_errors = errors.DRIVER_ERRORS

    def __init__(
        self,
        *,
        table_name: str | None = None,
        client: Any = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        create_table: bool = False,
        session_ttl: float | None = None,
        max_clock_skew: float | None = skew.DEFAULT_MAX_CLOCK_SKEW,
        **rest: Any,
    ) -> None:
        if "ttl" in rest:
            raise ConfigurationError("the dynamodb backend's option ttl is now named session_ttl")
        super().__init__(**rest)
        self.table_name = options.table_name(table_name)
        self.session_ttl = validated_session_ttl(session_ttl)
        self.max_clock_skew = skew.validated_bound(max_clock_skew)
        if not isinstance(create_table, bool):
            raise ConfigurationError(f"create_table must be True or False, not {create_table!r}")
        self.create_table = create_table
        self._given = None if client is None else options.given_client(client, region_name, endpoint_url)
        self._place = (region_name, endpoint_url)
        # Made now (it does not connect), so that a place boto3 cannot use is refused now.
        if self._given is not None:
            clients.count_requests(client)
        self._client = client if self._given is not None else options.new_client(region_name, endpoint_url)
        self._client_pid = os.getpid()
        self._client_mutex = threading.Lock()

    @property
    def client(self) -> Any:
        """The boto3 client; this process's own, unless one was given.

        A session object made before ``fork()`` keeps this store, and a
        client's pooled connections must not serve two processes, so a
        child makes its own on first use. A ``client=`` passed in is the
        caller's to make again after a fork.
        """
        if self._given is None and self._client_pid != os.getpid():
            with self._client_mutex:
                if self._client_pid != os.getpid():
                    self._client = clients.client_for(*self._place)
                    self._client_pid = os.getpid()
        return self._client

    def describe(self) -> str:
        return f"DynamoDB table {self.table_name!r} at {errors.where(self.client)}"

    # -- lifetime and errors ---------------------------------------------------------

    def prepare(self) -> None:
        """Create the table (``create_table=True``) or check that it exists and is keyed right."""
        if self.create_table:
            table.create(self.client, self.table_name)
        else:
            table.check(self.client, self.table_name)

    def is_transient(self, error: BaseException) -> bool:
        return errors.is_transient(error)

    def translate(self, error: BaseException, action: str, uid: str | None) -> TriggersError:
        return errors.translate(error, action, uid, self.table_name, self.client)

    # -- session operations ----------------------------------------------------------

    def load(self, uid: str, scope: LoadScope, view: SessionView | None = None) -> StoredSession:
        return loading.load(self.client, self.table_name, uid, scope, view or SessionView())

    def write(self, uid: str, changes: SessionChanges, view: SessionView | None = None) -> None:
        if view is None:
            # A save must know what it is based on (the epoch, where each
            # instance lives): read it. A session that moved on meanwhile
            # refuses the save, as it would have anyway.
            view = SessionView()
            if changes.base_version is not None:
                self.load(uid, LoadScope.FULL, view)
        saving.save(self.client, self.table_name, changes, view, session_ttl=self.session_ttl,
                    max_clock_skew=self.max_clock_skew)

    def take_lease(self, uid: str, lease: Lease, view: SessionView | None = None) -> bool:
        clock = time.time if view is None else view.clock
        return leases.take(self.client, self.table_name, uid, lease, clock, self.max_clock_skew)

    def renew_lease(self, uid: str, lease: Lease) -> bool:
        return leases.renew(self.client, self.table_name, uid, lease)

    def release_lease(self, uid: str, lease: Lease) -> None:
        leases.release(self.client, self.table_name, uid, lease)

    # -- administration --------------------------------------------------------------

    def create_schema(self) -> list[str]:
        """Create the table (on-demand billing, TTL enabled); idempotent."""
        return table.create(self.client, self.table_name)

    def check_schema(self) -> list[str]:
        """Describe the table; raise ``SchemaError`` if it is missing or keyed otherwise."""
        return table.check(self.client, self.table_name)

    def session_uids(self) -> Iterator[str]:
        """Every saved session's uid, expired ones left out (a ``Scan``: an operator's tool)."""
        pages = self.client.get_paginator("scan").paginate(
            TableName=self.table_name,
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
        for page in pages:
            for item in page.get("Items", []):
                yield item["pk"]["S"]
