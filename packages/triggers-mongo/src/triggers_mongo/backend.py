"""``MongoStorageBackend``: session state in MongoDB (entry point ``mongo``).

How each guarantee is kept (the documents are described in :mod:`.layout`):

* **Load**: the header, then the session's item documents in one query
  (``{session, active: True}`` through an index for a fire, ``{session}`` for
  everything), then the header's version again: if a save was committed in
  between, the load starts over, so a reader never mixes two versions.
* **Lock**: the header carries a lease (random token, expiry written and
  judged on the server's clock, ``$$NOW``). Taking it reads the
  header, and only if the lease is free or expired writes it with one
  conditional upsert: it matches only a free or expired lease; if another
  process took it meanwhile, the upsert's insert hits the unique ``_id`` and
  loses. (Reading first keeps waiters from queueing writes behind a live
  holder's open transaction.)
* **Save**: items are never updated in place. A save inserts a new document,
  tagged with the new version and its own random *writer* token, for each
  record it changed (a tombstone for a deleted metadata key); then it flips the
  header from the loaded version to the new one with a compare-and-swap on the
  version *and* the lease token (the fence); then it *settles*: marks its
  documents committed, removes the copies they replace, marks the header
  settled. Readers only see committed documents (see :mod:`.layout`), so until
  the flip the old state is intact, and after it the new one is complete, even
  if the process dies in between. Where the server runs multi-document
  transactions (``transactions="auto"`` asks ``hello``), all of this happens
  in one transaction as well.
* **Crashed holders**: the lease records the logical session id (``lsid``)
  its holder's save transactions run in. A holder killed in the middle of a
  save leaves its transaction open, and its uncommitted write of the header
  makes every later write of the header wait (SecantusDB waits until the
  transaction ends, which it never does by itself; ``mongod`` aborts it after
  ``transactionLifetimeLimitSeconds``). Whoever takes over the expired lease
  first runs ``killSessions`` on that lsid, which aborts the transaction on
  both servers, then writes.
* **Bounded calls**: every server call runs under :func:`pymongo.timeout`
  (a client-side deadline, sent as ``maxTimeMS`` and enforced on the socket
  too): taking the lease gets what is left of the caller's lock wait, every
  other call (each of a save's on its own) the lease's length (at least
  1 s), and none more than the client's ``serverSelectionTimeoutMS``. A server that blocks therefore ends
  in :class:`~triggers.errors.LockTimeoutError` or a ``StorageError`` naming
  the cause, never in a wait without end.
* **Durability**: the backend writes with ``j: true`` (unless the client's
  write concern sets ``j`` itself): a save is acknowledged only once it is
  in the server's journal, so a server crash right after cannot lose it.
* **Errors**: every driver error reaches the caller as a
  :class:`~triggers.errors.StorageError` naming the session, the operation and
  the server (password hidden), with the driver's exception as its cause.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import bson
import pymongo
from pymongo import DeleteMany, DeleteOne, MongoClient, UpdateOne, WriteConcern
from pymongo.client_session import ClientSession
from pymongo.collection import Collection
from pymongo.errors import (
    DuplicateKeyError,
    ExecutionTimeout,
    InvalidName,
    NetworkTimeout,
    PyMongoError,
)

from triggers import values
from triggers.capabilities import Capabilities
from triggers.errors import (
    ConfigurationError,
    CorruptSessionError,
    LockTimeoutError,
    SchemaError,
    SessionLimitError,
    StaleSessionError,
    StorageError,
    hide_passwords,
)
from triggers.locking import Lease
from triggers.storage import (
    LoadScope,
    SessionChanges,
    StoredSession,
    TriggerStorageBackend,
    is_active_record,
)
from triggers_mongo import clients, layout
from triggers_mongo.errors import driver_errors

__all__ = ["MAX_DOCUMENT_BYTES", "MongoStorageBackend"]

MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
"""MongoDB's limit on one BSON document."""

_RECORD_BYTES = MAX_DOCUMENT_BYTES - 1024 * 1024
"""Largest record we promise: one document, less room for its uid, name and fields."""

_PREFIX = re.compile(r"[A-Za-z0-9_]{1,60}\Z")
_LOAD_ATTEMPTS = 20

_NOW: Document = {"$divide": [{"$toLong": "$$NOW"}, 1000]}
"""The server's clock in seconds since the epoch, inside an aggregation or pipeline update.

Leases are written (``$$NOW + ttl``) and judged (``lease_expires <= $$NOW``) on
the server's clock, so a process whose clock is wrong cannot take a live lease
nor write one that others take at once; its own clock only measures how long
it may keep working.
"""

_LEASE_EXPIRES: Document = {"$ifNull": ["$lease_expires", 0]}

_SHORTEST_ATTEMPT = 1.0
"""Seconds one try for the lease may take when the caller's wait is (nearly) spent:
``acquire_lock(timeout=0)`` still makes one real attempt."""

_BATCH = 1000
"""Most operations in one bounded call of a save: a save of 10,000 items sends ten
calls, each of which must finish within the lease, rather than one that must carry
them all in that time (SecantusDB took over 30 s for 20,000 settling operations)."""

logger = logging.getLogger(__name__)

Document = dict[str, Any]

_prepared: set[tuple[int, int, str, str, bool]] = set()
_prepared_mutex = threading.Lock()


@dataclass(frozen=True)
class _Header:
    """What a load saw of the session header; the next save builds on it."""

    key: str
    version: int | None
    writer: str | None
    settled: int | None
    items_expire_at: datetime | None

    @property
    def unsettled(self) -> bool:
        return self.version is not None and self.settled != self.version


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
        Database holding the collections.
    ``collection`` (default ``"triggers"``)
        Prefix of the two collections (``<prefix>_sessions``, ``<prefix>_items``);
        letters, digits and ``_``.
    ``ttl`` (default ``None``: sessions never expire)
        Seconds after its last save at which a session expires, through TTL
        indexes on ``expires_at`` (MongoDB removes expired documents within
        about a minute).
    ``transactions`` (default ``"auto"``)
        ``"on"``: every save is also one multi-document transaction (needs a
        replica set or mongos); ``"off"``: never; ``"auto"``: on when the
        server's ``hello`` says it can. Saves are atomic for readers either way.

    Configuration example::

        {"backend": "mongo", "options": {"url": "mongodb://db/?replicaSet=rs0",
                                         "database": "app", "ttl": 604800}}
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,
        incremental_saves=True,
        partial_loads=True,
        ttl=True,
        max_record_bytes=_RECORD_BYTES,
    )

    def __init__(
        self,
        uid: str,
        *,
        url: str | None = None,
        client: MongoClient[Document] | None = None,
        database: str = "triggers",
        collection: str = "triggers",
        ttl: float | None = None,
        transactions: Literal["auto", "on", "off"] = "auto",
        **options: Any,
    ) -> None:
        super().__init__(uid, **options)
        self._url, self._given_client = url, client
        self._names = (database, collection)
        self._bound: _Bound | None = None
        bound = self._bind()  # refuses bad options now
        self._where = f"{bound.where} (database {database!r}, collections {collection!r}_*)"
        self.ttl = _ttl(ttl)
        self.transactions = _transactions(transactions)
        self._base: _Header | None = None
        self._holder: tuple[str, ClientSession] | None = None
        """(lease token, the client session whose lsid that lease records)."""

    def _bind(self) -> _Bound:
        """Client and collections of this process (re-bound after a ``fork()``).

        An object made before a fork must not use its parent's connection
        pool in the child, so the client comes from
        :func:`clients.client_for` (one per URL and process) at first use in
        each process. A ``client=`` passed in is the caller's to re-create
        after a fork (pymongo resets its pools in a child, with a warning).
        """
        bound = self._bound
        if bound is not None and bound.pid == os.getpid():
            return bound
        client, where = _client(self._url, self._given_client)
        write_concern = _journaled(client.write_concern)
        sessions, items = _collections(client, *self._names)
        bound = self._bound = _Bound(
            pid=os.getpid(), client=client, where=where, write_concern=write_concern,
            sessions=sessions.with_options(write_concern=write_concern),
            items=items.with_options(write_concern=write_concern),
        )
        return bound

    @property
    def client(self) -> MongoClient[Document]:
        """This process's client."""
        return self._bind().client

    @property
    def sessions(self) -> Collection[Document]:
        """This process's session-header collection (journaled writes)."""
        return self._bind().sessions

    @property
    def items(self) -> Collection[Document]:
        """This process's item collection (journaled writes)."""
        return self._bind().items

    @property
    def _write_concern(self) -> WriteConcern:
        return self._bind().write_concern

    # -- administration ------------------------------------------------------------

    @classmethod
    def create_schema(cls, **options: Any) -> list[str]:
        """Create the indexes (idempotent); with ``ttl=``, the TTL indexes too."""
        target = _Target.of(options)
        with driver_errors("create the indexes", target.where):
            return _create_indexes(target.sessions, target.items, ttl=target.ttl is not None)

    @classmethod
    def check_schema(cls, **options: Any) -> list[str]:
        """Describe the indexes; raise ``SchemaError`` if one is missing."""
        target = _Target.of(options)
        sessions, items, where = target.sessions, target.items, target.where
        wanted = {items.name: [index.document["name"] for index in layout.ITEM_INDEXES]}
        if target.ttl is not None:
            wanted[items.name].append("expires_at")
            wanted[sessions.name] = ["expires_at"]
        lines: list[str] = []
        with driver_errors("check the indexes", where):
            for collection in (sessions, items):
                found = {index["name"] for index in collection.list_indexes()}
                missing = [name for name in wanted.get(collection.name, []) if name not in found]
                if missing:
                    raise SchemaError(
                        f"{where}: collection {collection.name!r} lacks the indexes {missing}; "
                        "run `triggers --backend mongo --option url=... schema create` or "
                        "MongoStorageBackend.create_schema(...)"
                    )
                lines.extend(f"{collection.name}: index {name}" for name in sorted(found))
        return lines

    @classmethod
    def session_uids(cls, **options: Any) -> Iterator[str]:
        """Every saved session's uid."""
        target = _Target.of(options)
        with driver_errors("list the sessions", target.where):
            found = target.sessions.find({"version": {"$gte": 1}}, {"_id": 1})
            uids = [header["_id"] for header in found]
        yield from uids

    # -- loading -------------------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        with driver_errors(f"load session {self.uid!r}", self._where), self._bounded():
            self._prepare()
            for _ in range(_LOAD_ATTEMPTS):
                header = self._read_header()
                if header is None or header.version is None:
                    self._base = header
                    return StoredSession(configs={}, instances={}, metadata={}, version=None)
                query: Document = {"session": header.key}
                if scope < LoadScope.FULL and not header.unsettled:
                    query["active"] = True
                found = list(self.items.find(query, {"_id": 0, "expires_at": 0}))
                again = self._read_header()
                if again == header:
                    break
            else:
                raise StorageError(
                    f"could not load session {self.uid!r} on MongoDB {self._where}: it changed "
                    f"during each of {_LOAD_ATTEMPTS} attempts"
                )
        self._base = header
        parts: dict[str, dict[str, Any]] = {kind: {} for kind in layout.KINDS}
        for (kind, name), item in layout.current_items(
            found, header.version, header.writer
        ).items():
            if kind == layout.KIND_INSTANCE and scope < LoadScope.FULL and not item["active"]:
                continue
            parts[kind][name] = self._decoded(kind, name, item.get("record"))
        return StoredSession(
            configs=parts[layout.KIND_TASK],
            instances=parts[layout.KIND_INSTANCE],
            metadata=parts[layout.KIND_METADATA],
            version=header.version,
            complete=scope >= LoadScope.FULL,
        )

    def _decoded(self, kind: str, name: str, record: object) -> Any:
        """A stored item's record, or CorruptSessionError naming the uid and the item."""
        try:
            if not isinstance(record, str):
                raise TypeError(f"the record is a {type(record).__name__}, not JSON text")
            return json.loads(record)
        except (ValueError, TypeError) as error:
            raise CorruptSessionError(
                f"session {self.uid!r}: the stored {kind} {name[:80]!r} could not be decoded "
                f"({error}); it was left untouched"
            ) from error

    def _read_header(self, session: ClientSession | None = None) -> _Header | None:
        document = self.sessions.find_one({"_id": self.uid}, session=session)
        if document is None:
            return None
        return _Header(
            key=document["key"],
            version=document.get("version"),
            writer=document.get("writer"),
            settled=document.get("settled"),
            items_expire_at=_aware(document.get("items_expire_at")),
        )

    # -- saving --------------------------------------------------------------------

    def _save_changes(self, changes: SessionChanges) -> None:
        writer = secrets.token_hex(16)
        # Each server call of a save is bounded on its own (not the save as a whole):
        # a save of 10,000 new items may well outlast one lease, and may do so.
        with driver_errors(f"save session {self.uid!r}", self._where):
            with self._bounded():
                self._prepare()
            base = self._base
            if base is None or base.version != changes.base_version:
                with self._bounded():
                    base = self._read_header()
            if base is None:
                raise StaleSessionError(
                    f"session {self.uid!r}: its header is gone (expired?); nothing was written"
                )
            now = self.clock()
            header_update: Document = {"version": changes.new_version, "writer": writer}
            items_expire_at = base.items_expire_at
            refresh_expiry = False
            if self.ttl is not None:
                header_update["expires_at"] = _moment(now + self.ttl)
                if items_expire_at is None or items_expire_at < _moment(now + self.ttl):
                    items_expire_at = _moment(now + 2 * self.ttl)
                    header_update["items_expire_at"] = items_expire_at
                    refresh_expiry = True
            in_transaction = self._use_transactions()
            documents = self._documents(
                changes, base.key, writer, items_expire_at, committed=in_transaction
            )

            def write(session: ClientSession | None) -> None:
                if base.unsettled:
                    assert base.version is not None and base.writer is not None
                    self._settle(base.key, base.version, base.writer, None, session)
                if refresh_expiry:
                    with self._bounded():
                        self.items.update_many(
                            {"session": base.key},
                            {"$set": {"expires_at": items_expire_at}},
                            session=session,
                        )
                for start in range(0, len(documents), _BATCH):
                    with self._bounded():
                        self.items.insert_many(
                            documents[start : start + _BATCH], ordered=False, session=session
                        )
                fence = {
                    "_id": self.uid,
                    "version": changes.base_version,
                    "lease_token": changes.lease_token,
                }
                with self._bounded():
                    flipped = self.sessions.update_one(
                        fence, {"$set": header_update}, session=session
                    )
                if flipped.matched_count != 1:
                    if session is None:
                        self._discard(documents)
                    with self._bounded():
                        raise self._refusal(changes, session)
                self._settle(
                    base.key,
                    changes.new_version,
                    writer,
                    documents,
                    session,
                    committed=in_transaction,
                )

            if in_transaction:
                concern = self._write_concern
                commit_ms = int(self._budget() * 1000)
                holder = self._holder
                if holder is not None and holder[0] == changes.lease_token:
                    # The session the lease names, so that a successor can kill it.
                    holder[1].with_transaction(
                        write, write_concern=concern, max_commit_time_ms=commit_ms
                    )
                else:  # pragma: no cover - every lease of this backend names a session
                    with self.client.start_session() as session:
                        session.with_transaction(
                            write, write_concern=concern, max_commit_time_ms=commit_ms
                        )
            else:
                write(None)
        self._base = _Header(
            base.key, changes.new_version, writer, changes.new_version, items_expire_at
        )

    def _documents(
        self,
        changes: SessionChanges,
        key: str,
        writer: str,
        expires_at: datetime | None,
        *,
        committed: bool,
    ) -> list[Document]:
        """The item documents of a save, each checked against the 16 MB limit first."""
        documents: list[Document] = []

        def add(kind: str, name: str, record: Any, *, active: bool, deleted: bool = False) -> None:
            document: Document = {
                "session": key,
                "kind": kind,
                "name": name,
                "version": changes.new_version,
                "writer": writer,
                "committed": committed,
                "active": active,
                "record": values.canonical_json(record),
            }
            if deleted:
                document["deleted"] = True
            if expires_at is not None:
                document["expires_at"] = expires_at
            size = len(bson.encode(document))
            if size > MAX_DOCUMENT_BYTES:
                raise SessionLimitError(
                    f"session {self.uid!r}: {kind} {name!r} takes {size} bytes as a MongoDB "
                    f"document; the limit is {MAX_DOCUMENT_BYTES}. Nothing was written"
                )
            documents.append(document)

        for name, record in changes.configs.items():
            add(layout.KIND_TASK, name, record, active=True)
        for name, record in changes.instances.items():
            add(layout.KIND_INSTANCE, name, record, active=is_active_record(record))
        for name, value in changes.metadata.items():
            add(layout.KIND_METADATA, name, value, active=True)
        for name in changes.deleted_metadata:
            add(layout.KIND_METADATA, name, None, active=True, deleted=True)
        return documents

    def _settle(
        self,
        key: str,
        version: int,
        writer: str,
        documents: list[Document] | None,
        session: ClientSession | None,
        *,
        committed: bool = False,
    ) -> None:
        """Make the documents of a committed save the only copies of their items.

        ``documents`` are those the save inserted (with their ``_id``);
        ``committed``: they were written as committed already (in a
        transaction). Idempotent: the next holder runs it again for a save
        whose writer died after the flip (``documents=None``: look them up,
        the one query here that reads through the whole session).

        Every operation matches by ``_id``, or one item by equality through
        the ``session_item`` index, so settling costs what the save wrote,
        whatever the size of the session (and no ``$in``, which some servers
        run slowly).
        """
        if documents is None:
            mine = {"session": key, "version": version, "writer": writer}
            fields = {"_id": 1, "kind": 1, "name": 1, "deleted": 1}
            with self._bounded():
                documents = list(self.items.find(mine, fields, session=session))
        operations: list[Any] = []
        if not committed:
            operations.extend(
                UpdateOne({"_id": document["_id"]}, {"$set": {"committed": True}})
                for document in documents
            )
        operations.extend(
            DeleteMany(
                {
                    "session": key,
                    "kind": document["kind"],
                    "name": document["name"],
                    "version": {"$lt": version},
                }
            )
            for document in documents
        )
        operations.extend(  # tombstones last: older copies are gone by now
            DeleteOne({"_id": document["_id"]}) for document in documents if document.get("deleted")
        )
        for start in range(0, len(operations), _BATCH):  # in order: tombstones stay last
            with self._bounded():
                self.items.bulk_write(
                    operations[start : start + _BATCH], ordered=True, session=session
                )
        with self._bounded():
            self.sessions.update_one(
                {"_id": self.uid, "version": version, "writer": writer},
                {"$set": {"settled": version}},
                session=session,
            )

    def _discard(self, documents: list[Document]) -> None:
        """Remove the documents of a refused save (best effort: readers ignore them)."""
        try:
            if documents:
                with self._bounded():
                    self.items.bulk_write(
                        [DeleteOne({"_id": document["_id"]}) for document in documents]
                    )
        except PyMongoError:
            pass

    def _refusal(self, changes: SessionChanges, session: ClientSession | None) -> StaleSessionError:
        document = self.sessions.find_one({"_id": self.uid}, session=session)
        if document is None:
            reason = "its header is gone (expired?)"
        elif document.get("lease_token") != changes.lease_token:
            reason = "the lease was taken over by another holder"
        else:
            reason = (
                f"the stored version is {document.get('version')}, this holder loaded "
                f"{changes.base_version}"
            )
        return StaleSessionError(f"session {self.uid!r}: {reason}; nothing was written")

    # -- leases --------------------------------------------------------------------

    def _acquire_lease(self, lease: Lease) -> bool:
        """One try for the lease, bounded by what is left of the caller's wait.

        The header is read first and written only when its lease is free or
        expired, so a live holder's open transaction is never waited for;
        an expired holder's session is killed before the write (see the
        module docstring). A write the server still does not finish in time
        ends the wait with ``LockTimeoutError`` naming the cause.
        """
        left = self._lock_wait_left()
        budget = self._budget(left)
        action = f"acquire the lock of session {self.uid!r}"
        session: ClientSession | None = None
        try:
            with driver_errors(action, self._where), pymongo.timeout(budget):
                self._prepare()
                current = next(iter(self.sessions.aggregate([
                    {"$match": {"_id": self.uid}},
                    {"$project": {"lease_session": 1, "live": {"$gt": [_LEASE_EXPIRES, _NOW]}}},
                ])), None)
                if self._spent(lease):
                    return False
                if current is not None:
                    if current.get("live") is True:
                        return False  # held: poll again, without touching the header
                    if current.get("lease_session"):
                        self._end_abandoned_session(current["lease_session"])
                session = self.client.start_session()
                fields: Document = {
                    "lease_token": {"$literal": lease.token},
                    "lease_expires": {"$add": [_NOW, lease.ttl]},
                    "lease_session": {"$literal": session.session_id},
                }
                # What an upsert inserts ($setOnInsert has no pipeline form):
                # an existing header keeps its own values.
                new_header: dict[str, object] = {
                    "key": secrets.token_hex(16),
                    "version": None,
                    "writer": None,
                    "settled": None,
                }
                if self.ttl is not None:
                    new_header["expires_at"] = _moment(lease.acquired_at + self.ttl)
                for name, value in new_header.items():
                    fields[name] = {"$ifNull": [f"${name}", {"$literal": value}]}
                try:
                    self.sessions.update_one(
                        {"_id": self.uid, "$expr": {"$lte": [_LEASE_EXPIRES, _NOW]}},
                        [{"$set": fields}],
                        upsert=True,
                    )
                except DuplicateKeyError:
                    return False  # another holder took it since the read
                except (ExecutionTimeout, NetworkTimeout) as error:
                    raise LockTimeoutError(
                        f"session {self.uid!r}: the server did not take the lease within the "
                        f"{budget:.3g} s it was given ({type(error).__name__}: "
                        f"{str(error)[:200]}); something holds the session's header, such as "
                        "an open transaction of a holder that died"
                    ) from error
                if self._spent(lease):
                    return False  # a fresh lease next time; this one expires by itself
                self._forget_holder()
                self._holder, session = (lease.token, session), None
                return True
        finally:
            if session is not None:  # not acquired: the session names no lease
                session.end_session()

    def _spent(self, lease: Lease) -> bool:
        """True when this attempt took so long that half of ``lease`` is gone.

        pymongo waits for a server (after a restart, say) before the first
        call of an attempt, and the lease's clock started before it: taking a
        lease that is about to run out would only make the save after it fail
        (``LeaseExpiredError``). The base class tries again with a fresh lease.
        """
        return self.clock() - lease.acquired_at > lease.ttl / 2

    def _end_abandoned_session(self, lsid: object) -> None:
        """Abort the transaction (if any) of an expired holder's session: ``killSessions``.

        Best effort: a server that refuses (no privilege, an older server)
        leaves the next write bounded by the lock wait instead.
        """
        try:
            self.client.admin.command("killSessions", [lsid])
        except PyMongoError as error:
            if isinstance(error, ExecutionTimeout | NetworkTimeout):
                raise
            logger.warning(
                "session %r: could not end the session of the expired lock holder: %s",
                self.uid, error,
            )

    def _renew_lease(self, lease: Lease) -> bool:
        with driver_errors(f"renew the lock of session {self.uid!r}", self._where), \
                self._bounded():
            renewed = self.sessions.update_one(
                {"_id": self.uid, "lease_token": lease.token},
                [{"$set": {"lease_expires": {"$add": [_NOW, lease.ttl]}}}],
            )
        return renewed.matched_count == 1

    def _release_lease(self, lease: Lease) -> None:
        try:
            with driver_errors(f"release the lock of session {self.uid!r}", self._where), \
                    self._bounded():
                self.sessions.update_one(
                    {"_id": self.uid, "lease_token": lease.token},
                    {"$set": {"lease_token": None, "lease_expires": 0.0, "lease_session": None}},
                )
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
        """Seconds one call may take: ``seconds`` (taking the lease: what is left of
        the wait), else the lease's length; never past the client's server selection
        timeout.

        A call under the lock cannot usefully outlast the lease. The cap keeps an
        outage as visible as the client's configuration says: under
        :func:`pymongo.timeout` pymongo waits for a server (and retries) for the
        whole deadline instead of ``serverSelectionTimeoutMS``.
        """
        wanted = max(self.lease_ttl if seconds is None else seconds, _SHORTEST_ATTEMPT)
        return min(wanted, self.client.options.server_selection_timeout)

    def _bounded(self) -> AbstractContextManager[None]:
        return pymongo.timeout(self._budget())

    def _use_transactions(self) -> bool:
        if self.transactions == "auto":
            return clients.supports_transactions(self.client)
        return self.transactions == "on"

    def _prepare(self) -> None:
        """Create the indexes once per process and client, before first use."""
        marker = (
            id(self.client),
            os.getpid(),
            self.sessions.full_name,
            self.items.full_name,
            self.ttl is not None,
        )
        if marker in _prepared:
            return
        with _prepared_mutex:
            if marker in _prepared:
                return
            _create_indexes(self.sessions, self.items, ttl=self.ttl is not None)
            _prepared.add(marker)


def _journaled(concern: WriteConcern) -> WriteConcern:
    """The client's write concern, plus ``j: true`` unless it says ``j`` (or ``w: 0``) itself.

    A save is acknowledged to the application as done; with ``j: false`` a
    server crash right after can still lose it (SecantusDB did, see
    docs/backends/mongo.md), and a lost save also takes the fence back.
    """
    document = dict(concern.document)
    if "j" in document or document.get("w") == 0:
        return concern
    return WriteConcern(**document, j=True)


def _moment(seconds: float) -> datetime:
    """Seconds since the epoch as a UTC datetime (BSON keeps milliseconds)."""
    return datetime.fromtimestamp(seconds, UTC)


def _aware(moment: datetime | None) -> datetime | None:
    """A BSON date as an aware UTC datetime, whatever the client's ``tz_aware`` setting."""
    if moment is None or moment.tzinfo is not None:
        return moment
    return moment.replace(tzinfo=UTC)


def _create_indexes(
    sessions: Collection[Document], items: Collection[Document], *, ttl: bool
) -> list[str]:
    lines = [f"{items.name}: index {name}" for name in items.create_indexes(layout.ITEM_INDEXES)]
    if ttl:
        for collection in (sessions, items):
            for name in collection.create_indexes([layout.TTL_INDEX]):
                lines.append(f"{collection.name}: TTL index {name}")
    return lines


def _client(
    url: str | None, client: MongoClient[Document] | None
) -> tuple[MongoClient[Document], str]:
    if (url is None) == (client is None):
        raise ConfigurationError(
            "the mongo backend needs exactly one of url= (a MongoDB connection string, e.g. "
            "'mongodb://localhost:27017') or client= (an existing pymongo MongoClient)"
        )
    if client is not None:
        if not isinstance(client, MongoClient):
            raise ConfigurationError(
                f"client= must be a pymongo MongoClient, got {type(client).__name__}"
            )
        return client, "(the given client)"
    if not isinstance(url, str):
        raise ConfigurationError(f"url= must be a str, got {type(url).__name__}")
    try:
        return clients.client_for(url), hide_passwords(url)
    except (PyMongoError, ValueError, TypeError) as error:
        raise ConfigurationError(
            f"url={hide_passwords(url)!r} is not usable: {hide_passwords(str(error))}"
        ) from error


@dataclass(frozen=True)
class _Bound:
    """What a storage object uses in one process: the client and its collections."""

    pid: int
    client: MongoClient[Document]
    where: str
    write_concern: WriteConcern
    sessions: Collection[Document]
    items: Collection[Document]


def _collections(
    client: MongoClient[Document], database: str, prefix: str
) -> tuple[Collection[Document], Collection[Document]]:
    if not isinstance(database, str) or not database:
        raise ConfigurationError(f"database= must be a non-empty str, not {database!r}")
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigurationError(f"collection={prefix!r}: use 1-60 letters, digits or underscores")
    try:
        db = client[database]
    except InvalidName as error:
        raise ConfigurationError(f"database={database!r} is not a valid name: {error}") from error
    names = layout.collection_names(prefix)
    return db[names.sessions], db[names.items]


def _ttl(ttl: object) -> float | None:
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int | float) or not 0 < ttl < 1e10:
        raise ConfigurationError(f"ttl= must be a positive number of seconds or None, not {ttl!r}")
    return float(ttl)


def _transactions(option: object) -> Literal["auto", "on", "off"]:
    if option == "auto":
        return "auto"
    if option == "on":
        return "on"
    if option == "off":
        return "off"
    raise ConfigurationError(f"transactions= must be 'auto', 'on' or 'off', not {option!r}")


@dataclass(frozen=True)
class _Target:
    """Collections, ttl and description from backend options (for administration)."""

    sessions: Collection[Document]
    items: Collection[Document]
    ttl: float | None
    where: str

    @classmethod
    def of(cls, options: Mapping[str, Any]) -> _Target:
        client, where = _client(options.get("url"), options.get("client"))
        database = options.get("database", "triggers")
        prefix = options.get("collection", "triggers")
        sessions, items = _collections(client, database, prefix)
        return cls(sessions, items, _ttl(options.get("ttl")), where)
