"""One SQLAlchemy engine per database URL per process, set up for concurrency.

Engines own connection pools, so they are shared by every session object of a
process (a pool per session object would exhaust the server). They are keyed
by process id as well: a pool inherited across ``fork()`` shares sockets with
the parent, so a forked child gets engines of its own.

SQLite needs care to be safe with several processes on one file:

* WAL journal mode, so readers never block the writer and vice versa;
* a busy timeout, so a writer waits for another instead of failing at once;
* ``BEGIN IMMEDIATE`` for write transactions, so two writers never both read
  and then dead-lock upgrading to the write lock. pysqlite's own implicit
  transactions are switched off and this module emits ``BEGIN`` itself.

An in-memory SQLite database (``sqlite://``) exists once per connection, so it
is served by a single shared connection, and a process-wide lock serializes
its transactions (sqlite3 connections do not isolate threads from each other).

Round trips. Most steps are one statement (take the lease, load, release,
and on PostgreSQL and MariaDB the save, see :mod:`.writes`): a single
statement is atomic and reads one snapshot on every database, so wrapping it
in ``BEGIN``/``COMMIT`` only adds round trips. :func:`run_statement` and
:func:`run_conditional_write` run such steps without a transaction: on
PostgreSQL and MySQL/MariaDB through a companion engine whose connections
stay in autocommit mode (a second small pool: switching one connection in and
out of autocommit costs PyMySQL a ``SET autocommit`` round trip each way), on
SQLite on the same engine without ``BEGIN``. :func:`run_transaction` is for
work of several statements (SQLite's and MySQL's save); it runs on the engine
itself, which stays an ordinary transactional engine for anyone else who
uses it.

Dead connections. The engines do not ping the server at every checkout
(``pool_pre_ping`` costs a round trip per operation). A connection that the
server dropped (a restart, an idle timeout) fails on its first statement
instead; SQLAlchemy then invalidates it and the rest of the pool, and the
operation is run once more on a new connection, but only where that cannot
apply anything twice: a single-statement operation the caller declares
idempotent, a transaction whose ``COMMIT`` was not sent yet (the database
rolled it back), or a conditional write that can only apply if its first run
did not (:func:`run_conditional_write`). A lost connection during ``COMMIT``
is never retried: whether it committed is unknown, and the error reaches the
caller.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import StaticPool

__all__ = [
    "SQLITE_BUSY_TIMEOUT_MS",
    "disown_inherited_connections",
    "engine_for",
    "is_sqlite_memory",
    "rerun_if_lost",
    "run_conditional_write",
    "run_statement",
    "run_transaction",
    "statement_engine",
    "transaction",
]

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for another process's write lock."""

_WRITE = "triggers_write"
"""Connection execution option: this transaction will write (SQLite: BEGIN IMMEDIATE)."""

_SINGLE = "triggers_single_statement"
"""Connection execution option (SQLite): run without BEGIN, in sqlite3's autocommit."""

_T = TypeVar("_T")

_engines: dict[tuple[str, int], Engine] = {}
_engines_mutex = threading.Lock()
_memory_locks: weakref.WeakKeyDictionary[Engine, threading.RLock] = weakref.WeakKeyDictionary()
"""In-memory SQLite engine -> the lock serializing its one connection (by object, not id)."""
_statement_engines: weakref.WeakKeyDictionary[Engine, Engine] = weakref.WeakKeyDictionary()
"""Engine made by :func:`engine_for` -> where its single statements run (itself for SQLite)."""


def is_sqlite_memory(engine: Engine) -> bool:
    """True for an SQLite database that lives in one connection's memory."""
    url = engine.url
    return url.get_backend_name() == "sqlite" and url.database in (None, "", ":memory:")


def engine_for(url: str) -> Engine:
    """The engine of ``url`` for this process, created on first use."""
    key = (url, os.getpid())
    with _engines_mutex:
        engine = _engines.get(key)
        if engine is None:
            engine = _engines[key] = _create(url)
        return engine


_owners: weakref.WeakKeyDictionary[Engine, int] = weakref.WeakKeyDictionary()
"""Engine passed in by the application -> the process id that last used it."""


def disown_inherited_connections(engine: Engine) -> None:
    """In a forked child, let ``engine``'s pool forget the connections it inherited.

    For engines the application passed in (``engine=``), which this module
    cannot re-create per process: ``dispose(close=False)`` replaces the pool
    without closing the sockets, which still belong to the parent, so the
    child opens connections of its own. A no-op in the process that made it.
    """
    pid = os.getpid()
    with _engines_mutex:
        owner = _owners.setdefault(engine, pid)
        if owner == pid:
            return
        _owners[engine] = pid
        engine.dispose(close=False)
        companion = _statement_engines.get(engine)
        if companion is not None and companion is not engine:
            companion.dispose(close=False)


def statement_engine(engine: Engine) -> Engine:
    """The engine that runs ``engine``'s single statements (see the module docstring).

    For an engine of :func:`engine_for` on a server, its autocommit companion;
    otherwise ``engine`` itself. Whoever counts what the backend sends (the
    benchmarks) listens on both.
    """
    return _statement_engines.get(engine, engine)


def _create(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite":
        engine = create_engine(parsed)
        # A connection in autocommit mode has no transaction to roll back
        # when it goes back to the pool: skip that round trip (PyMySQL
        # would send ROLLBACK regardless).
        _statement_engines[engine] = create_engine(
            parsed, isolation_level="AUTOCOMMIT", skip_autocommit_rollback=True
        )
        return engine
    options: dict[str, Any]
    if parsed.database in (None, "", ":memory:"):
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        options = {"connect_args": {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}}
    engine = create_engine(parsed, **options)
    prepare_sqlite(engine)
    _statement_engines[engine] = engine
    return engine


def prepare_sqlite(engine: Engine) -> None:
    """Take over SQLite's transactions on ``engine`` (see the module docstring)."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        dbapi_connection.isolation_level = None  # no implicit BEGIN from pysqlite
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
            if not is_sqlite_memory(engine):
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection: Connection) -> None:
        options = connection.get_execution_options()
        if options.get(_SINGLE, False):
            return  # one statement, in sqlite3's autocommit: atomic by itself
        connection.exec_driver_sql("BEGIN IMMEDIATE" if options.get(_WRITE, False) else "BEGIN")


def _memory_lock(engine: Engine) -> threading.RLock | None:
    if not is_sqlite_memory(engine):
        return None
    with _engines_mutex:
        return _memory_locks.setdefault(engine, threading.RLock())


@contextmanager
def _serialized(engine: Engine) -> Iterator[None]:
    """Hold the in-memory SQLite database's lock (a no-op for every other database)."""
    lock = _memory_lock(engine)
    if lock is None:
        yield
        return
    with lock:
        yield


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A connection in a transaction, committed on success, rolled back otherwise.

    The connection goes back to the pool on every path. ``write=True`` takes
    SQLite's write lock at ``BEGIN`` (other databases lock rows as they go).
    """
    with _serialized(engine), engine.connect() as connection:
        if write:
            connection = connection.execution_options(**{_WRITE: True})
        with connection.begin():
            yield connection


def _lost_connection(error: DBAPIError) -> bool:
    """True when SQLAlchemy found the connection dead (and invalidated the pool's)."""
    return bool(error.connection_invalidated)


def rerun_if_lost(work: Callable[[], _T]) -> _T:
    """Run ``work``, and once more if it lost its connection; ``work`` must be idempotent.

    For whole operations that may safely run twice (reads, creating the
    tables): the second run gets a new connection, as SQLAlchemy invalidated
    the pool's connections when it found one dead.
    """
    try:
        return work()
    except DBAPIError as error:
        if not _lost_connection(error):
            raise
    return work()


def run_statement(engine: Engine, work: Callable[[Connection], _T]) -> _T:
    """Run ``work`` (single statements) outside any transaction: one round trip each.

    ``work`` must be idempotent, since it is run again once if the connection
    was lost: every statement it sends is atomic by itself, so a rerun sees
    either none or all of what the lost attempt did. An engine that is not
    one of :func:`engine_for`'s runs ``work`` in a transaction instead.
    """
    return rerun_if_lost(lambda: _single_statements(engine, work, write=False))


def _single_statements(engine: Engine, work: Callable[[Connection], _T], *, write: bool) -> _T:
    """Run ``work`` once on the statement engine (no ``BEGIN``/``COMMIT``), or, for an
    engine that is not one of :func:`engine_for`'s, in a transaction."""
    target = _statement_engines.get(engine)
    if target is None:
        with transaction(engine, write=write) as connection:
            return work(connection)
    with _serialized(target), target.connect() as connection:
        if target is engine:  # SQLite: the same engine, without BEGIN
            connection = connection.execution_options(**{_SINGLE: True})
        return work(connection)


def run_conditional_write(
    engine: Engine, work: Callable[[Connection], _T], applied: Callable[[_T], bool]
) -> _T:
    """Run ``work``, one conditional write in one statement, outside any transaction.

    The statement is atomic by itself, so it runs like :func:`run_statement`
    (one round trip, no ``BEGIN``/``COMMIT``). It is not idempotent, but it is
    conditioned on the version it moves the session from, which makes running
    it again after a lost connection safe: the second run can only apply if
    the first did not (had it applied, the version would have moved on). When
    the second run is refused instead, ``applied(result)`` False, the first
    may have applied before the connection was lost, so the error of the lost
    connection is raised: its outcome is unknown, and the caller must read the
    session to know. Any error of the second run is reported the same way.
    """
    def attempt() -> _T:
        return _single_statements(engine, work, write=True)

    try:
        return attempt()
    except DBAPIError as error:
        if not _lost_connection(error):
            raise
        lost = error
    try:
        result = attempt()
    except Exception:
        raise lost from lost.__cause__  # the second run's error is the context
    if not applied(result):
        raise lost
    return result


def run_transaction(engine: Engine, work: Callable[[Connection], _T], *, write: bool) -> _T:
    """Run ``work`` in one transaction; again once if the connection was lost before COMMIT.

    Until ``COMMIT`` is sent, a lost connection means the database rolled the
    transaction back: nothing of it was applied, so running it again on a new
    connection is safe. Losing the connection during ``COMMIT`` leaves the
    outcome unknown; that error reaches the caller and nothing is rerun.
    """
    for attempt in (1, 2):
        committing = False
        try:
            with transaction(engine, write=write) as connection:
                result = work(connection)
                committing = True  # leaving the block sends COMMIT
            return result
        except DBAPIError as error:
            if attempt == 2 or committing or not _lost_connection(error):
                raise
    raise AssertionError("unreachable")  # pragma: no cover
