"""``SQLStorageBackend``: session state in SQL tables (entry point ``sql``).

How each guarantee is kept (the tables are described in :mod:`.schema`):

* **Load**: one ``SELECT ... UNION ALL ...`` statement reads the session row,
  the task configs, the instances (only the ``active`` ones for a fire) and the
  metadata (:mod:`.statements`). One round trip, and one statement sees one
  consistent snapshot on every database, so a reader never sees half of a
  concurrent save. It runs without ``BEGIN``/``COMMIT`` (see :mod:`.engines`).
* **Save**: one conditional write of only what changed (:mod:`.writes`): the
  session row moves from the loaded version to the next only if it still has
  the loaded version and, for a save under the lock, the holder's lease
  token, or, for an optimistic save (``transact`` without a lease), no live
  lease at all; the changed rows are written only then, atomically with it.
  One statement on PostgreSQL and MariaDB, one transaction on SQLite. A
  refused save writes nothing and raises
  :class:`~triggers.errors.StaleSessionError` saying why (the lease was taken
  over, a lease holder is at work, the version moved on), which the core
  turns into a retry of an optimistic change.
* **Lock**: the session row carries a lease (random token and expiry, both
  written and judged on the database's clock, see :mod:`.clock`, so a process
  with a wrong clock cannot take a live lease); taking, renewing and
  releasing it are single statements (:mod:`.statements`).
* **Errors**: every database error reaches the caller as a
  :class:`~triggers.errors.StorageError` naming the session, the operation and
  the database (password hidden), with the driver's exception as its cause. A
  deadlock or serialization failure, which the database rolled back, is
  retried (up to 5 times).
"""

from __future__ import annotations

import dataclasses
import json
import re
import threading
import weakref
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, TypeVar

from sqlalchemy import Connection, Engine, select
from sqlalchemy.exc import DBAPIError, IntegrityError, SQLAlchemyError

from triggers import values
from triggers.capabilities import Capabilities
from triggers.errors import (
    ConfigurationError,
    CorruptSessionError,
    SessionLimitError,
    StorageError,
    TriggersError,
)
from triggers.locking import Lease
from triggers.storage import (
    LoadScope,
    SessionChanges,
    StoredSession,
    TriggerStorageBackend,
    is_active_record,
)
from triggers_sql import engines, limits, schema, writes
from triggers_sql.schema import Tables, name_key
from triggers_sql.statements import statements

__all__ = ["SQLStorageBackend"]

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}\Z")

_DEADLOCK_RETRIES = 5

_T = TypeVar("_T")

_prepared: weakref.WeakKeyDictionary[Engine, set[tuple[str, str | None]]] = weakref.WeakKeyDictionary()
"""Engine -> (version table, schema) of the tables created or checked through it."""
_prepared_mutex = threading.Lock()


class SQLStorageBackend(TriggerStorageBackend):
    """Session state in SQLite, PostgreSQL or MariaDB/MySQL, through SQLAlchemy Core.

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``):

    ``url``
        A SQLAlchemy database URL, e.g. ``sqlite:///triggers.db``,
        ``postgresql+psycopg://user@host/db``, ``mysql+pymysql://user@host/db``.
        One engine (and pool) per URL per process is shared by every session.
    ``engine``
        An existing :class:`~sqlalchemy.Engine` instead of ``url``. The caller
        owns it; in a process forked after it was used, the storage object
        drops the connections its pool inherited before its first statement.
    ``table_prefix`` (default ``"triggers_"``)
        Prefix of every table name, so several applications can share a schema.
    ``schema`` (default: the connection's)
        Database schema (PostgreSQL) or database (MySQL) holding the tables.
    ``create_tables`` (default ``True``)
        Create missing tables on first use. Teams that manage DDL themselves
        set it to ``False`` and run ``triggers schema create`` (or
        :meth:`create_schema`) once; the backend then only checks the version.

    An in-memory SQLite database (``sqlite://``) is private to one process:
    use it for tests, never to share sessions between processes.
    """

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,
        incremental_saves=True,
        partial_loads=True,
        optimistic_saves=True,
    )

    def __init__(
        self,
        uid: str,
        *,
        url: str | None = None,
        engine: Engine | None = None,
        table_prefix: str = "triggers_",
        schema: str | None = None,
        create_tables: bool = True,
        **options: Any,
    ) -> None:
        super().__init__(uid, **options)
        _engine(url, engine)  # refuse bad options now, whichever process uses the object
        self._url = url
        self._given_engine = engine
        self.tables = _tables(table_prefix, schema)
        self._key = name_key(self.uid)
        _prepare(self.engine, self.tables, create=create_tables)
        claimed = _claims_for(self.engine)
        record_limit = limits.record_limit(self.engine)
        if record_limit is not None:
            claimed = dataclasses.replace(claimed, max_record_bytes=record_limit)
        if claimed != type(self).capabilities:
            self._declare_capabilities(claimed)

    @classmethod
    def capabilities_for(cls, **options: Any) -> Capabilities:
        """An in-memory SQLite database claims no shared state: it dies with its process."""
        return _claims_for(_engine(options.get("url"), options.get("engine")))

    @property
    def engine(self) -> Engine:
        """The engine of this process, looked up at every use (never one inherited by fork).

        An object made before ``fork()`` and used on both sides must not
        share pooled connections: two processes reading replies from one
        socket get each other's rows. A ``url`` resolves to this process's
        engine (:func:`engines.engine_for`); an ``engine=`` passed in drops
        the connections its pool inherited, without closing the parent's.
        """
        if self._given_engine is None:
            assert self._url is not None
            return engines.engine_for(self._url)
        engines.disown_inherited_connections(self._given_engine)
        return self._given_engine

    # -- administration --------------------------------------------------------

    @classmethod
    def create_schema(cls, **options: Any) -> list[str]:
        """Create the tables (idempotent); refuses tables of another schema version."""
        engine, tables = _target(options)
        with _database_errors("create the tables", engine):
            return engines.rerun_if_lost(lambda: schema.create_schema(engine, tables))

    @classmethod
    def check_schema(cls, **options: Any) -> list[str]:
        """Describe the tables; raise ``SchemaError`` if missing or of another version."""
        engine, tables = _target(options)
        with _database_errors("check the tables", engine):
            return engines.rerun_if_lost(lambda: schema.check_schema(engine, tables))

    @classmethod
    def session_uids(cls, **options: Any) -> Iterator[str]:
        """Every saved session's uid, in the database's order of their keys."""
        engine, tables = _target(options)
        sessions = tables.sessions
        query = select(sessions.c.uid).where(sessions.c.version.is_not(None))
        with _database_errors("list the sessions", engine):
            texts = engines.run_statement(engine, lambda c: list(c.scalars(query)))
        yield from (json.loads(text) for text in texts)

    # -- loading -----------------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        load = statements(self.tables)
        query = load.load_all if scope >= LoadScope.FULL else load.load_active
        params = {"p_key": self._key}
        parts: dict[str, dict[str, Any]] = {"c": {}, "i": {}, "m": {}}
        stored_version: int | None = None
        rows = self._run("load", lambda c: list(c.execute(query, params)))
        for kind, name, body, row_version in rows:
            if kind == "s":
                stored_version = row_version
            else:
                key, value = self._decoded(kind, name, body)
                parts[kind][key] = value
        return StoredSession(
            configs=parts["c"],
            instances=parts["i"],
            metadata=parts["m"],
            version=stored_version,
            complete=scope >= LoadScope.FULL,
        )

    def _decoded(self, kind: str, name: str, body: str) -> tuple[str, Any]:
        """A stored row's name and value, or CorruptSessionError naming the uid and the row."""
        try:
            return json.loads(name), json.loads(body)
        except ValueError as error:
            what = {"c": "task config", "i": "task instance", "m": "metadata value"}[kind]
            raise CorruptSessionError(
                f"session {self.uid!r}: the stored {what} {name[:80]} is not valid JSON "
                f"({error}); it was left untouched"
            ) from error

    # -- saving ------------------------------------------------------------------

    def _save_changes(self, changes: SessionChanges) -> None:
        """One conditional write (see :mod:`.writes`); StaleSessionError saying why if refused."""
        write = self._write_of(changes)
        limit = self.capabilities.max_record_bytes
        outcome = self._call_database(
            "save", lambda: writes.save(self.engine, self.tables, write, packet_limit=limit)
        )
        if not outcome.saved:
            raise writes.refusal(self.uid, write, outcome)

    def _write_of(self, changes: SessionChanges) -> writes.Write:
        """The rows of ``changes`` as stored (keys and JSON text), and their fence."""

        def row(name: str, body: values.JSONValue) -> tuple[str, str, str]:
            return name_key(name), _text(name), values.canonical_json(body)

        metas = [row(name, value) for name, value in changes.metadata.items()]
        self._check_metadata_sizes(metas)
        return writes.Write(
            key=self._key,
            uid=_text(self.uid),
            base_version=changes.base_version,
            new_version=changes.new_version,
            token=None if changes.lease is None else changes.lease.token,
            configs=[row(name, record) for name, record in changes.configs.items()],
            instances=[
                (*row(name, record), is_active_record(record))
                for name, record in changes.instances.items()
            ],
            metas=metas,
            deleted=[name_key(name) for name in changes.deleted_metadata],
        )

    def _check_metadata_sizes(self, metas: list[tuple[str, str, str]]) -> None:
        """Refuse a metadata value over the record limit (the base class checks the other records)."""
        limit = self.capabilities.max_record_bytes
        if limit is None:
            return
        for _, name, value in metas:
            size = len(value.encode("utf-8"))
            if size > limit:
                raise SessionLimitError(
                    f"session {self.uid!r}: metadata {json.loads(name)!r} takes {size} "
                    f"bytes; this database takes at most {limit} per record (half of "
                    "max_allowed_packet, less room for the statement). Nothing was written"
                )

    # -- leases ------------------------------------------------------------------

    def _acquire_lease(self, lease: Lease) -> bool:
        lock = statements(self.tables)
        params = {"p_key": self._key, "p_uid": _text(self.uid), "p_token": lease.token,
                  "p_ttl": lease.ttl}

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
            return self._run("acquire the lock", attempt)
        except StorageError as error:
            if isinstance(error.__cause__, IntegrityError) or _is_deadlock(error.__cause__):
                return False  # another holder has it; the base class polls again
            raise

    def _renew_lease(self, lease: Lease) -> bool:
        renew = statements(self.tables).renew
        params = {"p_key": self._key, "p_token": lease.token, "p_ttl": lease.ttl}
        return self._run("renew the lock", lambda c: c.execute(renew, params).rowcount == 1)

    def _release_lease(self, lease: Lease) -> None:
        release = statements(self.tables).release
        params = {"p_key": self._key, "p_token": lease.token}
        self._run("release the lock", lambda c: c.execute(release, params))

    # -- plumbing ----------------------------------------------------------------

    def _run(self, action: str, work: Callable[[Connection], _T]) -> _T:
        """Run ``work``, single statements each safe to run again (:func:`.engines.run_statement`)."""
        return self._call_database(action, lambda: engines.run_statement(self.engine, work))

    def _call_database(self, action: str, call: Callable[[], _T]) -> _T:
        """Run ``call``; again if the database broke a deadlock; errors as StorageError.

        A deadlock or serialization failure undoes what it interrupted (the
        statement, or the whole transaction), so running it again is safe;
        any other error is final.
        """
        for attempt in range(_DEADLOCK_RETRIES + 1):
            try:
                with _database_errors(f"{action} session {self.uid!r}", self.engine):
                    return call()
            except StorageError as error:
                if attempt == _DEADLOCK_RETRIES or not _is_deadlock(error.__cause__):
                    raise
        raise AssertionError("unreachable")  # pragma: no cover


def _is_deadlock(error: BaseException | None) -> bool:
    """True for a deadlock / serialization failure the database rolled back."""
    if not isinstance(error, DBAPIError) or error.orig is None:
        return False
    orig: Any = error.orig
    if getattr(orig, "sqlstate", None) in ("40001", "40P01"):  # psycopg 3
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in (1213, 1205)  # MySQL/MariaDB deadlock, lock wait timeout


def _text(name: str) -> str:
    """A user-chosen name as stored: JSON text (escapes NUL, keeps everything else)."""
    return json.dumps(name, ensure_ascii=False)


@contextmanager
def _database_errors(action: str, engine: Engine) -> Iterator[None]:
    """Turn SQLAlchemy / DBAPI errors into StorageError with a short, clear message."""
    try:
        yield
    except TriggersError:
        raise
    except SQLAlchemyError as error:
        cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
        detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
        where = engine.url.render_as_string(hide_password=True)
        raise StorageError(
            f"could not {action} on {where}: {type(cause).__name__}: {detail}"
        ) from error


def _claims_for(engine: Engine) -> Capabilities:
    """The class's claims, narrowed for an in-memory SQLite database (private to a process)."""
    claims = SQLStorageBackend.capabilities
    if engines.is_sqlite_memory(engine):
        return dataclasses.replace(claims, shared_state=False, cross_process_locking=False)
    return claims


def _engine(url: str | None, engine: Engine | None) -> Engine:
    if (url is None) == (engine is None):
        raise ConfigurationError(
            "the sql backend needs exactly one of url= (a SQLAlchemy database URL, e.g. "
            "'sqlite:///triggers.db') or engine= (an existing Engine)"
        )
    if engine is not None:
        if not isinstance(engine, Engine):
            raise ConfigurationError(
                f"engine= must be a sqlalchemy Engine, got {type(engine).__name__}"
            )
        return engine
    if not isinstance(url, str):
        raise ConfigurationError(f"url= must be a str, got {type(url).__name__}")
    try:
        return engines.engine_for(url)
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise ConfigurationError(f"url={url!r} is not usable: {error}") from error


def _tables(prefix: str, schema_name: str | None) -> Tables:
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigurationError(
            f"table_prefix={prefix!r}: use 1-40 letters, digits or underscores, not starting "
            "with a digit"
        )
    if schema_name is not None and not isinstance(schema_name, str):
        raise ConfigurationError(f"schema= must be a str or None, got {type(schema_name).__name__}")
    return schema.tables(prefix, schema_name)


def _target(options: Mapping[str, Any]) -> tuple[Engine, Tables]:
    """Engine and tables from backend options (for the class-level administration)."""
    return (
        _engine(options.get("url"), options.get("engine")),
        _tables(options.get("table_prefix", "triggers_"), options.get("schema")),
    )


def _prepare(engine: Engine, tables: Tables, *, create: bool) -> None:
    """Create or check the tables once per engine, before the first session uses them.

    Remembered by the engine object itself (weakly), never by ``id(engine)``:
    CPython reuses the id of a collected engine, so an application making
    engines over time (one per tenant or per test) would find a new engine
    taken for prepared, and its first lock would fail with "no such table".
    """
    marker = (tables.version.name, tables.metadata.schema)
    if marker in _prepared.get(engine, ()):
        return
    with _prepared_mutex, _database_errors("prepare the tables", engine):
        if marker in _prepared.get(engine, ()):
            return
        prepare = schema.create_schema if create else schema.check_schema
        engines.rerun_if_lost(lambda: prepare(engine, tables))  # both are idempotent
        _prepared.setdefault(engine, set()).add(marker)
