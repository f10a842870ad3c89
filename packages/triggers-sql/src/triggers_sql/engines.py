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
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.pool import StaticPool

__all__ = ["SQLITE_BUSY_TIMEOUT_MS", "engine_for", "is_sqlite_memory", "transaction"]

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long an SQLite writer waits for another process's write lock."""

_WRITE = "triggers_write"
"""Connection execution option: this transaction will write (SQLite: BEGIN IMMEDIATE)."""

_engines: dict[tuple[str, int], Engine] = {}
_engines_mutex = threading.Lock()
_memory_locks: dict[int, threading.RLock] = {}


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


def _create(url: str) -> Engine:
    parsed = make_url(url)
    options: dict[str, Any] = {"pool_pre_ping": True}
    if parsed.get_backend_name() != "sqlite":
        return create_engine(parsed, **options)
    if parsed.database in (None, "", ":memory:"):
        options = {"poolclass": StaticPool, "connect_args": {"check_same_thread": False}}
    else:
        options["connect_args"] = {"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000}
    engine = create_engine(parsed, **options)
    prepare_sqlite(engine)
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
        write = connection.get_execution_options().get(_WRITE, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _memory_lock(engine: Engine) -> threading.RLock | None:
    if not is_sqlite_memory(engine):
        return None
    with _engines_mutex:
        return _memory_locks.setdefault(id(engine), threading.RLock())


@contextmanager
def transaction(engine: Engine, *, write: bool) -> Iterator[Connection]:
    """A connection in a transaction, committed on success, rolled back otherwise.

    The connection goes back to the pool on every path. ``write=True`` takes
    SQLite's write lock at ``BEGIN`` (other databases lock rows as they go).
    """
    lock = _memory_lock(engine)
    if lock is not None:
        lock.acquire()
    try:
        with engine.connect() as connection:
            if write:
                connection = connection.execution_options(**{_WRITE: True})
            with connection.begin():
                yield connection
    finally:
        if lock is not None:
            lock.release()
