"""``SQLStore``: one set of triggers-sql tables in one database, configured once per process.

What belongs to the database rather than to one session: the options,
checked once (:mod:`.options`); the engine, this process's own (:mod:`.engines`);
the tables, created or checked once before the first session uses them
(:meth:`SQLStore.prepare`); what the database can take (an in-memory SQLite
database is private to its process, MariaDB's packet limits a record, see
:mod:`.limits`); how SQLAlchemy fails (:mod:`.errors`); the administration;
and the session operations: a load and the lease steps are single statements
(:mod:`.statements`), a save is one conditional write (:mod:`.writes`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from triggers.capabilities import Capabilities
from triggers.errors import TriggersError
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession
from triggers.stores import Store
from triggers_sql import engines, errors, limits, options, records, round_trips, schema, writes
from triggers_sql.schema import name_key
from triggers_sql.statements import statements

__all__ = ["SQLStore"]

_T = TypeVar("_T")

_prepared_on: weakref.WeakKeyDictionary[Engine, set[tuple[str, str | None]]] = weakref.WeakKeyDictionary()
"""Engine -> (version table, schema) of the tables created or checked through it.

A store built on an engine passed in lives only while session objects use
it; an application that makes one session object per request would
otherwise check its tables again at every request. Remembered by the engine
object itself (weakly), never by ``id(engine)``: CPython reuses the id of a
collected engine, and a new engine taken for prepared would fail its first
lock with "no such table"."""
_prepared_mutex = threading.Lock()


class SQLStore(Store):
    """The triggers-sql tables of one database (the options are documented on
    :class:`~triggers_sql.SQLStorageBackend`)."""

    capabilities = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,
        incremental_saves=True,
        partial_loads=True,
        optimistic_saves=True,
    )
    driver_errors = errors.DRIVER_ERRORS

    def __init__(
        self,
        *,
        url: str | None = None,
        engine: Engine | None = None,
        table_prefix: str = "triggers_",
        schema: str | None = None,
        create_tables: bool = True,
        **rest: object,
    ) -> None:
        super().__init__(**rest)
        resolved = options.checked_engine(url, engine)
        self.url = url
        self._given_engine = engine
        self.tables = options.checked_tables(table_prefix, schema)
        self.create_tables = create_tables
        if engines.is_sqlite_memory(resolved):
            # It lives and dies with one process: nothing may rely on it to share sessions.
            self.capabilities = dataclasses.replace(
                self.capabilities, shared_state=False, cross_process_locking=False
            )

    @property
    def engine(self) -> Engine:
        """The engine of this process, looked up at every use (never one inherited by fork).

        Two processes reading replies from one pooled socket get each
        other's rows. A ``url`` resolves to this process's engine
        (:func:`.engines.engine_for`); an ``engine=`` passed in drops the
        connections its pool inherited, without closing the parent's.
        """
        if self._given_engine is None:
            assert self.url is not None
            return engines.engine_for(self.url)
        engines.disown_inherited_connections(self._given_engine)
        return self._given_engine

    def describe(self) -> str:
        return errors.where(self.engine)

    # -- lifetime and errors ---------------------------------------------------------

    def prepare(self) -> None:
        """Create the tables (``create_tables=True``) or check them, once per engine;
        then declare MariaDB's record limit, which only the server can tell."""
        engine = self.engine
        round_trips.count_on_spans(engine)  # once per store and process, not at every use
        with errors.database_errors("prepare the tables", engine):
            _prepare_tables(engine, self.tables, create=self.create_tables)
            record_limit = limits.record_limit(engine)
        if record_limit is not None:
            self.capabilities = dataclasses.replace(self.capabilities, max_record_bytes=record_limit)

    def is_transient(self, error: BaseException) -> bool:
        """A deadlock or serialization failure: the database rolled back what it broke."""
        return errors.is_deadlock(error)

    def translate(self, error: BaseException, action: str, uid: str | None) -> TriggersError:
        if not isinstance(error, SQLAlchemyError):
            return super().translate(error, action, uid)
        what = action if uid is None else f"{action} session {uid!r}"
        return errors.storage_error(error, what, self.describe())

    # -- session operations ----------------------------------------------------------

    def load(self, uid: str, scope: LoadScope) -> StoredSession:
        """One statement: the session row and its records (only the active instances
        below a full load), one snapshot on every database."""
        load = statements(self.tables)
        query = load.load_all if scope >= LoadScope.FULL else load.load_active
        params = {"p_key": name_key(uid)}
        rows = self._run(lambda c: list(c.execute(query, params)))
        return records.stored_session(uid, rows, complete=scope >= LoadScope.FULL)

    def write(self, uid: str, changes: SessionChanges) -> None:
        """One conditional write (see :mod:`.writes`); StaleSessionError saying why if refused."""
        write = records.write_of(uid, changes)
        limit = self.capabilities.max_record_bytes
        outcome = errors.retrying_deadlocks(
            lambda: writes.save(self.engine, self.tables, write, packet_limit=limit)
        )
        if not outcome.saved:
            raise writes.refusal(uid, write, outcome)

    def take_lease(self, uid: str, lease: Lease) -> bool:
        lock = statements(self.tables)
        params = {"p_key": name_key(uid), "p_uid": records.stored_text(uid),
                  "p_token": lease.token, "p_ttl": lease.ttl}

        def attempt(connection: Connection) -> bool:
            if connection.execute(lock.take, params).rowcount == 1:
                return True
            # No row (a new session), or held by another: the INSERT tells
            # which, and only one of several processes can win it. (Rerun
            # after a lost connection, the UPDATE finds this token if the
            # INSERT had been applied.)
            connection.execute(lock.create, params)
            return True

        try:
            return errors.retrying_deadlocks(lambda: self._run(attempt))
        except DBAPIError as error:
            if isinstance(error, IntegrityError) or errors.is_deadlock(error):
                return False  # another holder has it; the base class polls again
            raise

    def renew_lease(self, uid: str, lease: Lease) -> bool:
        renew = statements(self.tables).renew
        params = {"p_key": name_key(uid), "p_token": lease.token, "p_ttl": lease.ttl}
        return self._run(lambda c: c.execute(renew, params).rowcount == 1)

    def release_lease(self, uid: str, lease: Lease) -> None:
        release = statements(self.tables).release
        params = {"p_key": name_key(uid), "p_token": lease.token}
        self._run(lambda c: c.execute(release, params))

    def _run(self, work: Callable[[Connection], _T]) -> _T:
        """Run ``work``, single statements each safe to run again (:func:`.engines.run_statement`)."""
        return engines.run_statement(self.engine, work)

    # -- administration --------------------------------------------------------------

    def create_schema(self) -> list[str]:
        """Create the tables (idempotent); refuses tables of another schema version."""
        engine = self.engine
        with errors.database_errors("create the tables", engine):
            return engines.rerun_if_lost(lambda: schema.create_schema(engine, self.tables))

    def check_schema(self) -> list[str]:
        """Describe the tables; raise ``SchemaError`` if missing or of another version."""
        engine = self.engine
        with errors.database_errors("check the tables", engine):
            return engines.rerun_if_lost(lambda: schema.check_schema(engine, self.tables))

    def session_uids(self) -> Iterator[str]:
        """Every saved session's uid, in the database's order of their keys."""
        sessions = self.tables.sessions
        query = select(sessions.c.uid).where(sessions.c.version.is_not(None))
        with errors.database_errors("list the sessions", self.engine):
            texts = self._run(lambda c: list(c.scalars(query)))
        yield from (json.loads(text) for text in texts)


def _prepare_tables(engine: Engine, tables: schema.Tables, *, create: bool) -> None:
    """Create or check ``tables`` through ``engine``, unless done already (see ``_prepared_on``)."""
    marker = (tables.version.name, tables.metadata.schema)
    with _prepared_mutex:
        if marker in _prepared_on.get(engine, ()):
            return
        prepare = schema.create_schema if create else schema.check_schema
        engines.rerun_if_lost(lambda: prepare(engine, tables))  # both are idempotent
        _prepared_on.setdefault(engine, set()).add(marker)
