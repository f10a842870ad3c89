"""``MongoStorageBackend``: session state in MongoDB (entry point ``mongo``).

Each concept has its module: the documents and which of them a reader
believes (:mod:`.layout`), loading in one round trip (:mod:`.loading`),
the conditional write with or without transactions (:mod:`.writing`), the
lease (:mod:`.leases`), and the collection, shared by every session object
of a process (:mod:`.store`: options, client, indexes, driver errors,
administration). This class keeps what one session object knows (the
header it loaded, the lock holder's client session), wires the modules to
the core's hooks and bounds every call:

* **Bounded calls**: every server call runs under :func:`pymongo.timeout`
  (a client-side deadline, sent as ``maxTimeMS`` and enforced on the socket
  too): taking the lease, and every call of an optimistic change, gets what
  is left of the caller's wait (``lock_timeout``, or ``timeout=``); a lock
  holder's calls (each of a save's on its own) the lease's length; each at
  least 1 s and none more than the client's ``serverSelectionTimeoutMS``. A
  server that blocks therefore ends in :class:`~triggers.errors.LockTimeoutError`
  or a ``StorageError`` naming the cause, never in a wait without end.
* **Errors**: every driver error reaches the caller as a
  :class:`~triggers.errors.StorageError` naming the session, the operation and
  the server (password hidden), with the driver's exception as its cause
  (:meth:`.MongoStore.translate`, through the core's ``_translate`` hook).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any, ClassVar

import pymongo
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import ExecutionTimeout, NetworkTimeout, PyMongoError

from triggers.capabilities import Capabilities
from triggers.errors import LockTimeoutError, StaleSessionError, TriggersError
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend
from triggers.stores import COMMON_OPTIONS, store_options
from triggers_mongo import layout, leases, loading, writing
from triggers_mongo.errors import DRIVER_ERRORS
from triggers_mongo.layout import Header
from triggers_mongo.store import MongoStore
from triggers_mongo.writing import MAX_DOCUMENT_BYTES

__all__ = ["MAX_DOCUMENT_BYTES", "MongoStorageBackend"]

Document = dict[str, Any]

_SHORTEST_CALL = 1.0
"""Seconds one call may take when the caller's wait is (nearly) spent:
``acquire_lock(timeout=0)`` still makes one real attempt."""


class MongoStorageBackend(TriggerStorageBackend):
    """Session state in MongoDB (or any server speaking its protocol), through pymongo.

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``):

    ``url``
        A MongoDB connection string, e.g. ``mongodb://app:secret@db1,db2/?replicaSet=rs0``.
        One client (one pool) per URL per process is shared by every session
        object, and rebuilt in a forked child (pymongo is not fork-safe).
    ``client``
        An existing :class:`~pymongo.MongoClient` instead of ``url``; the
        caller owns it (and must not share it across ``fork()``).
    ``database`` (default ``"triggers"``)
        Database holding the collection.
    ``collection`` (default ``"triggers"``)
        The collection holding headers and items; letters, digits and ``_``.
    ``session_ttl`` (default ``None``: sessions never expire)
        Seconds after its last save at which a session expires, through the
        TTL index on ``expires_at`` (MongoDB removes expired documents within
        about a minute). (This option used to be called ``ttl``, which is now
        refused.)
    ``transactions`` (default ``"auto"``)
        ``"on"``: every save of a lock holder is also one multi-document
        transaction (needs a replica set or mongos); ``"off"``: never;
        ``"auto"``: on when the server's ``hello`` says it can. Optimistic
        saves never use one. Saves are atomic for readers either way.

    Configuration example::

        {"backend": "mongo", "options": {"url": "mongodb://db/?replicaSet=rs0",
                                         "database": "app", "session_ttl": 604800}}
    """

    store_class: ClassVar[type[MongoStore]] = MongoStore
    """The store its options (all but the common ones) build, shared per process."""
    capabilities: ClassVar[Capabilities] = MongoStore.capabilities

    def __init__(self, uid: str, **options: Any) -> None:
        self._store_options = store_options(options)
        self._store = MongoStore.shared(**self._store_options)
        self._store_pid = os.getpid()
        super().__init__(uid, **{k: v for k, v in options.items() if k in COMMON_OPTIONS})
        self._base: Header | None = None
        self._dead: list[Any] = []
        """Copies the last load found that no save can commit any more (see :mod:`.layout`)."""
        self._holder: tuple[str, ClientSession] | None = None
        """(lease token, the client session whose lsid that lease records)."""

    @property
    def store(self) -> MongoStore:
        """This process's store for this object's options (another after a ``fork()``).

        An object made before a fork must not use its parent's connection
        pool in the child, so the child looks up (and on first use builds)
        a store of its own, whose client comes from :func:`clients.client_for`
        (one per URL and process). A ``client=`` passed in is the caller's to
        re-create after a fork (pymongo resets its pools in a child, with a
        warning).
        """
        if self._store_pid != os.getpid():
            self._store = MongoStore.shared(**self._store_options)
            self._store_pid = os.getpid()
        return self._store

    @property
    def client(self) -> MongoClient[Document]:
        """This process's client."""
        return self.store.client

    @property
    def collection(self) -> Collection[Document]:
        """This process's collection of headers and items (journaled writes)."""
        return self.store.collection

    # -- administration: the store's, built from the same options -------------------

    @classmethod
    def create_schema(cls, **options: Any) -> list[str]:
        """Create the indexes (idempotent)."""
        return MongoStore.shared(**store_options(options)).create_schema()

    @classmethod
    def check_schema(cls, **options: Any) -> list[str]:
        """Describe the indexes; raise ``SchemaError`` if one is missing."""
        return MongoStore.shared(**store_options(options)).check_schema()

    @classmethod
    def session_uids(cls, **options: Any) -> Iterator[str]:
        """Every saved session's uid."""
        yield from MongoStore.shared(**store_options(options)).session_uids()

    # -- loading and saving -------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        with self._bounded():
            self.store.prepare_once()
            loaded = loading.read(self.collection, self.uid, scope)
        known = self._base
        self._base = loaded.header or Header.new()
        # Dead for good (a header's version only grows): kept until a save lets them expire.
        dead = layout.dead_copies(loaded.items, self._base)
        earlier = self._dead if known is not None and known.key == self._base.key else []
        self._dead = list(dict.fromkeys([*earlier, *dead]))
        return loading.stored_session(self.uid, loaded)

    def _save_changes(self, changes: SessionChanges) -> None:
        with self._bounded():
            self.store.prepare_once()
        # Only a lock holder saves in a transaction: its lease names the transaction's
        # session, so a successor can end it if the holder dies inside. An optimistic
        # save names no session anywhere; it uses the commit protocol, which leaves
        # nothing open when its writer dies (and is one round trip, not two).
        in_transaction = changes.lease is not None and self.store.use_transactions()
        header = self._ready_header(changes, carry=not in_transaction)
        chosen = writing.plan(
            changes, header, session_ttl=self.store.session_ttl, now=self.clock(),
            transaction=in_transaction, dead=self._dead,
        )
        session, owned = self._transaction_session(changes) if in_transaction else (None, False)
        try:
            self._send_plan(chosen, changes, session)
        finally:
            if session is not None and owned:
                session.end_session()
        self._base, self._dead = chosen.after, []

    def _ready_header(self, changes: SessionChanges, *, carry: bool) -> Header:
        """The header this save builds on, made ready for the write.

        The loaded one (read again if this object did not load the version
        the changes build on; a fresh key for a new session). A header whose
        save is not settled yet (in flight, or its command stopped) is
        settled first, unless ``carry`` (no transactions) and it holds that
        save's records: this save then carries them (see
        :func:`writing.plan`). An optimistic save over a header whose lease
        names a session goes through :meth:`_end_expired_holder`.
        """
        header = self._base
        if header is None or header.version != changes.base_version:
            with self._bounded():
                header = loading.read_header(self.collection, self.uid)
        if header is None:
            return Header.new()
        if header.unsettled and not (carry and header.pending is not None):
            writing.settle(self.collection, self.uid, header, self._bounded)
        if changes.lease is None and header.lease_session is not None:
            self._end_expired_holder()
        return header

    def _end_expired_holder(self) -> None:
        """Before an optimistic save over a header whose lease names a session: refuse at
        once if that lease is live (on the server's clock), else end the holder's session
        (see :mod:`.leases`). The load only says a lease names a session, not whether it
        is live; this one more round trip happens only then."""
        with self._bounded():
            current = loading.read_header(self.collection, self.uid)
            if current is None or current.lease_session is None:
                return
            if current.lease_live:
                raise StaleSessionError(
                    f"session {self.uid!r}: a lock holder holds its lease; this save was "
                    "refused and nothing was written"
                )
            leases.end_abandoned_session(self.client, current.lease_session, self.uid)

    def _transaction_session(self, changes: SessionChanges) -> tuple[ClientSession, bool]:
        """The session to save in, and whether it is this save's own (to end after it).

        A lock holder saves in the session its lease names, so that a successor
        can end it (see :mod:`.leases`); an optimistic save in a new one.
        """
        holder = self._holder
        if changes.lease is not None and holder is not None and holder[0] == changes.lease.token:
            return holder[1], False
        return self.client.start_session(), True

    def _send_plan(
        self, chosen: writing.Plan, changes: SessionChanges, session: ClientSession | None
    ) -> None:
        transaction = None
        if session is not None:
            transaction = writing.Transaction(session, self.store.write_concern, self._budget())
        try:
            writing.write(self.collection, chosen, self._bounded, transaction)
        except PyMongoError as error:
            refused = writing.refusal(error, self.uid, changes.base_version)
            if refused is None:
                raise
            writing.clean_up(self.collection, chosen, self._bounded)
            raise refused from error
        writing.clean_up(self.collection, chosen, self._bounded)

    # -- leases --------------------------------------------------------------------

    def _acquire_lease(self, lease: Lease) -> bool:
        """One try for the lease, bounded by what is left of the caller's wait.

        The header is read first and written only when its lease is free or
        expired, so a live holder's open transaction is never waited for;
        an expired holder's session is killed before the write (see
        :mod:`.leases`). A write the server still does not finish in time
        ends the wait with ``LockTimeoutError`` naming the cause.
        """
        budget = self._budget(self._lock_wait_left())
        session: ClientSession | None = None
        try:
            with pymongo.timeout(budget):
                self.store.prepare_once()
                current = loading.read_header(self.collection, self.uid)
                if self._spent(lease) or (current is not None and current.lease_live):
                    return False  # held: poll again, without touching the header
                if current is not None and current.lease_session is not None:
                    leases.end_abandoned_session(self.client, current.lease_session, self.uid)
                session = self.client.start_session()
                if not self._take(lease, session, budget) or self._spent(lease):
                    return False  # a lease taken too late expires by itself
                self._forget_holder()
                self._holder, session = (lease.token, session), None
                return True
        finally:
            if session is not None:  # not acquired: the session names no lease
                session.end_session()

    def _take(self, lease: Lease, session: ClientSession, budget: float) -> bool:
        try:
            return leases.take(
                self.collection, lease, session.session_id, session_ttl=self.store.session_ttl
            )
        except (ExecutionTimeout, NetworkTimeout) as error:
            raise LockTimeoutError(
                f"session {self.uid!r}: the server did not take the lease within the "
                f"{budget:.3g} s it was given ({type(error).__name__}: {str(error)[:200]}); "
                "something holds the session's header, such as an open transaction of a "
                "holder that died"
            ) from error

    def _spent(self, lease: Lease) -> bool:
        """True when this attempt took so long that half of ``lease`` is gone.

        pymongo waits for a server (after a restart, say) before the first
        call of an attempt, and the lease's clock started before it: taking a
        lease that is about to run out would only make the save after it fail
        (``LeaseExpiredError``). The base class tries again with a fresh lease.
        """
        return self.clock() - lease.acquired_at > lease.ttl / 2

    def _renew_lease(self, lease: Lease) -> bool:
        with self._bounded():
            return leases.renew(self.collection, lease)

    def _release_lease(self, lease: Lease) -> None:
        try:
            with self._bounded():
                leases.release(self.collection, lease)
        finally:
            self._forget_holder()

    def _forget_holder(self) -> None:
        holder, self._holder = self._holder, None
        if holder is not None:
            holder[1].end_session()

    def _close(self) -> None:
        self._forget_holder()

    # -- plumbing ------------------------------------------------------------------

    def _budget(self, seconds: float | None = None) -> float:
        """Seconds one call may take: ``seconds`` if given (what is left of a wait),
        else what is left of an optimistic change's wait, else the lease's length;
        at least 1 s; never past the client's server selection timeout.

        A call cannot usefully outlast its caller's wait, nor a lock holder's
        call its lease. The cap keeps an outage as visible as the client's
        configuration says: under :func:`pymongo.timeout` pymongo waits for a
        server (and retries) for the whole deadline instead of
        ``serverSelectionTimeoutMS``.
        """
        if seconds is None:
            seconds = self._lock_wait_left()
        wanted = max(self.lease_ttl if seconds is None else seconds, _SHORTEST_CALL)
        return min(wanted, self.client.options.server_selection_timeout)

    def _bounded(self) -> AbstractContextManager[None]:
        return pymongo.timeout(self._budget())

    def _translate(self, error: BaseException, action: str) -> TriggersError:
        """A pymongo error as the store words it (what failed, on which session, where)."""
        if isinstance(error, DRIVER_ERRORS):
            return self.store.translate(error, action, self.uid)
        return super()._translate(error, action)
