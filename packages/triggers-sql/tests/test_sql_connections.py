"""How the sql backend uses connections: transactions only where needed, dead connections.

Single-statement steps (take the lease, load, release) run outside any
transaction, so each costs one round trip; the fenced save runs in one. The
engines do not ping the server at checkout: a connection the server dropped
fails on its first statement and the operation runs again on a new one, but
never after its ``COMMIT`` was sent. The connections are dropped for real, by
the server (``pg_terminate_backend``, ``KILL``), never by a mock.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

import pytest
from sql_counting import every_statement, traffic
from sql_databases import Database
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.pool import QueuePool

from triggers.errors import StorageError
from triggers_sql import SQLStorageBackend
from triggers_sql.engines import statement_engine


def _in_transaction(dbapi_connection: Any, dialect: str) -> bool:
    """Whether the driver runs the next statement inside a transaction."""
    if dialect == "sqlite":
        return bool(dbapi_connection.in_transaction)
    if dialect == "postgresql":
        return not dbapi_connection.autocommit
    return not dbapi_connection.get_autocommit()  # PyMySQL


@contextmanager
def _statements_and_transactions(storage: SQLStorageBackend) -> Iterator[list[tuple[str, bool]]]:
    """(first word of each statement, whether it ran in a transaction), in order."""
    seen: list[tuple[str, bool]] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        word = statement.split(None, 1)[0].upper()
        if word in ("BEGIN", "COMMIT", "ROLLBACK"):
            return
        dbapi_connection = conn.connection.dbapi_connection
        seen.append((word, _in_transaction(dbapi_connection, conn.dialect.name)))

    with every_statement(storage.engine, before):
        yield seen


def test_only_the_save_runs_in_a_transaction(database: Database) -> None:
    storage = SQLStorageBackend("s", **database.options)
    with storage.acquire_lock():
        storage.metadata["k"] = 0
        storage.save()
    storage.invalidate_cache()
    with _statements_and_transactions(storage) as seen, storage.acquire_lock():
        storage.metadata["k"] = 1
        storage.save()
    # take the lease, load, fence + one upsert in one transaction, release
    assert seen == [
        ("UPDATE", False),
        ("SELECT", False),
        ("UPDATE", True),
        ("INSERT", True),
        ("UPDATE", False),
    ]
    assert SQLStorageBackend("s", **database.options).metadata == {"k": 1}


# -- connections dropped by the server -------------------------------------------


def _server_id(dbapi_connection: Any, dialect: str) -> int:
    if dialect == "postgresql":
        return int(dbapi_connection.info.backend_pid)
    return int(dbapi_connection.thread_id())  # PyMySQL


def _pooled_ids(engine: Engine) -> set[int]:
    """The server-side ids of every connection waiting in the engine's pool."""
    pool = engine.pool
    assert isinstance(pool, QueuePool)
    with ExitStack() as stack:
        connections = [stack.enter_context(engine.connect()) for _ in range(pool.checkedin())]
        return {_server_id(c.connection.dbapi_connection, engine.dialect.name) for c in connections}


@contextmanager
def _dropper(url: str) -> Iterator[Callable[[int], None]]:
    """Drop one connection at the server, and wait until it is gone."""
    admin = create_engine(url, isolation_level="AUTOCOMMIT")
    postgresql = admin.dialect.name == "postgresql"

    def drop(server_id: int) -> None:
        with admin.connect() as connection:
            if postgresql:
                connection.execute(text("SELECT pg_terminate_backend(:id)"), {"id": server_id})
                alive = text("SELECT count(*) FROM pg_stat_activity WHERE pid = :id")
            else:
                connection.exec_driver_sql(f"KILL CONNECTION {server_id}")
                alive = text("SELECT count(*) FROM information_schema.processlist WHERE id = :id")
            deadline = time.monotonic() + 10
            while connection.execute(alive, {"id": server_id}).scalar():
                assert time.monotonic() < deadline, f"connection {server_id} was not dropped"
                time.sleep(0.01)

    try:
        yield drop
    finally:
        admin.dispose()


def test_connections_the_server_dropped_are_replaced_without_an_error(server: Database) -> None:
    storage = SQLStorageBackend("s", **server.options)
    with storage.acquire_lock():
        storage.metadata["k"] = 0
        storage.save()
    engines = [storage.engine, statement_engine(storage.engine)]
    assert engines[0] is not engines[1]
    dropped = _pooled_ids(engines[0]) | _pooled_ids(engines[1])
    assert dropped
    with _dropper(server.url) as drop:
        for server_id in dropped:
            drop(server_id)
    storage.invalidate_cache()
    with traffic(storage.engine) as seen, storage.acquire_lock():
        storage.metadata["k"] = 1
        storage.save()
    # The take failed on its dead connection and ran again; so did the fence.
    assert seen.saves == 2
    assert not (_pooled_ids(engines[0]) | _pooled_ids(engines[1])) & dropped
    assert SQLStorageBackend("s", **server.options).metadata == {"k": 1}


def test_a_save_that_lost_its_connection_at_commit_is_not_run_again(server: Database) -> None:
    storage = SQLStorageBackend("s", **server.options)
    with storage.acquire_lock():
        storage.metadata["k"] = 0
        storage.save()

    def drop_before_commit(connection: Any) -> None:
        drop(_server_id(connection.connection.dbapi_connection, connection.dialect.name))

    with _dropper(server.url) as drop, traffic(storage.engine) as seen, storage.acquire_lock():
        storage.metadata["k"] = 1
        event.listen(storage.engine, "commit", drop_before_commit)
        try:
            with pytest.raises(StorageError, match=r"could not save session 's'"):
                storage.save()
        finally:
            event.remove(storage.engine, "commit", drop_before_commit)
    assert seen.saves == 1  # the outcome of that COMMIT is unknown: no second attempt
    # (Here the server dropped the connection before COMMIT arrived: nothing was applied.)
    assert SQLStorageBackend("s", **server.options).metadata == {"k": 0}
