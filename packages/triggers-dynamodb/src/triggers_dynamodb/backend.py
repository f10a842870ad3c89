"""``DynamoDBStorageBackend``: session state in one DynamoDB table (entry point ``dynamodb``).

The backend is its store (:class:`~triggers_dynamodb.store.DynamoDBStore`)
and the few lines that give each session object its own
:class:`~triggers_dynamodb.loading.SessionView`. The concepts live in their
own modules:

* :mod:`.items`: the item layout (one item collection per session).
* :mod:`.loading`: a load is one strongly consistent ``Query``, accepted only
  when it holds one version whole.
* :mod:`.saving`: a save is one ``TransactWriteItems``, conditioned on the
  version and on the lease (the holder's token, or for an optimistic save,
  no live lease), refused as a whole otherwise.
* :mod:`.leases` and :mod:`.skew`: the lock on the header, stamped by the
  callers' clocks, whose skew against DynamoDB is measured and bounded.
* :mod:`.expiry`: the ``session_ttl`` option and DynamoDB's Time To Live.
* :mod:`.errors`, :mod:`.clients`, :mod:`.options`, :mod:`.table`: botocore
  errors, how a client is made, options, the table.

A fire (``storage.transact``, no lock) is one ``Query`` and one
``TransactWriteItems``.
"""

from __future__ import annotations

from typing import Any, ClassVar

from triggers.capabilities import Capabilities
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession
from triggers.stores import StoreStorageBackend
from triggers_dynamodb.loading import SessionView
from triggers_dynamodb.store import DynamoDBStore

__all__ = ["DynamoDBStorageBackend"]


class DynamoDBStorageBackend(StoreStorageBackend):
    """Session state in one Amazon DynamoDB table, through boto3.

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``):

    ``table_name`` (required)
        The table holding every session (partition key ``pk``, sort key
        ``sk``, both strings). Create it with ``python -m triggers_dynamodb
        create-table --table-name NAME``.
    ``client``
        An existing low-level boto3 DynamoDB client (``boto3.client("dynamodb")``,
        not a resource, which converts values itself). The caller owns it
        (and makes it again in a forked child).
    ``region_name`` / ``endpoint_url``
        Instead of ``client``: where DynamoDB is, e.g. ``endpoint_url=
        "http://localhost:8000"`` for DynamoDB Local. One client per
        configuration per process is shared by every session. Credentials
        come from boto3's usual chain.
    ``session_ttl`` (default ``None``: sessions never expire)
        Seconds a session is kept after its last save; then it reads as a
        new, empty session and DynamoDB's Time To Live deletes its items
        (see :mod:`.expiry`). A process without ``session_ttl`` keeps a
        session's expiry as it is. (This option used to be called ``ttl``.)
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
        table; without it the store checks once per process that the table
        exists and is keyed right.

    Example::

        storage_backends.get("dynamodb", "session-42", table_name="triggers",
                             region_name="eu-west-1", session_ttl=30 * 86_400)
    """

    store_class = DynamoDBStore
    capabilities: ClassVar[Capabilities] = DynamoDBStore.capabilities
    store: DynamoDBStore

    def __init__(self, uid: str, **options: Any) -> None:
        super().__init__(uid, **options)
        self._view = SessionView(self.clock)

    @property
    def client(self) -> Any:
        """The boto3 client this session's requests go through (its store's, for this process)."""
        return self.store.client

    # The store is shared; what this object loaded, and its clock, go with each call.

    def _load_session(self, scope: LoadScope) -> StoredSession:
        return self.store.load(self.uid, scope, self._view)

    def _save_changes(self, changes: SessionChanges) -> None:
        self.store.write(self.uid, changes, self._view)

    def _acquire_lease(self, lease: Lease) -> bool:
        return self.store.take_lease(self.uid, lease, self._view)
