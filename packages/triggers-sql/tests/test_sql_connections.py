"""How the sql backend uses connections: transactions only where needed, dead connections.

Single-statement steps (take the lease, load, release, and the save on
PostgreSQL and MariaDB) run outside any transaction, so each costs one round
trip; SQLite's save runs in one. The engines do not ping the server at
checkout: a connection the server dropped fails on its first statement and
the operation runs again on a new one, but never where that could apply a
save twice. The connections are dropped for real, by the server
(``pg_terminate_backend``, ``KILL``), never by a mock.
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


_DRIVER = ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK")


@contextmanager
def _statements_and_transactions(storage: SQLStorageBackend) -> Iterator[list[tuple[str, bool]]]:
    """(first word of each statement, whether it ran in a transaction), in order."""
    seen: list[tuple[str, bool]] = []

    def before(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.strip().upper() in _DRIVER:
            return
        dbapi_connection = conn.connection.dbapi_connection
        word = statement.split(None, 1)[0].upper()
        seen.append((word, _in_transaction(dbapi_connection, conn.dialect.name)))

    with every_statement(storage.engine, before):
        yield seen


_SAVE = {
    # one transaction of a fence and an upsert
    "sqlite": [("UPDATE", True), ("INSERT", True)],
    "postgresql": [("WITH", False)],  # one statement: WITH fence AS (UPDATE ...) ...
    "mariadb": [("BEGIN", False)],  # one compound statement: BEGIN NOT ATOMIC ... END
}


def test_only_sqlite_saves_in_a_transaction(database: Database) -> None:
    storage = SQLStorageBackend("s", **database.options)
    storage.transact(lambda: storage.metadata.update(k=0))
    storage.invalidate_cache()
    with _statements_and_transactions(storage) as seen, storage.acquire_lock():
        storage.metadata["k"] = 1
        storage.save()
    # take the lease, load, the save, release
    assert seen == [("UPDATE", False), ("SELECT", False), *_SAVE[database.name], ("UPDATE", False)]
    with _statements_and_transactions(storage) as seen:
        storage.transact(lambda: storage.metadata.update(k=2))
    assert seen == [("SELECT", False), *_SAVE[database.name]]  # load, the save: no lease
    assert SQLStorageBackend("s", **database.options).metadata == {"k": 2}


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


def _drop_pooled(engine: Engine, url: str) -> set[int]:
    """Drop every connection waiting in the pools of ``engine`` and its companion."""
    engines = [engine, statement_engine(engine)]
    assert engines[0] is not engines[1]
    dropped = _pooled_ids(engines[0]) | _pooled_ids(engines[1])
    assert dropped
    with _dropper(url) as drop:
        for server_id in dropped:
            drop(server_id)
    return dropped


def test_connections_the_server_dropped_are_replaced_without_an_error(server: Database) -> None:
    storage = SQLStorageBackend("s", **server.options)
    storage.transact(lambda: storage.metadata.update(k=0))
    dropped = _drop_pooled(storage.engine, server.url)
    storage.invalidate_cache()
    with traffic(storage.engine) as seen, storage.acquire_lock():
        storage.metadata["k"] = 1
        storage.save()
    # The take failed on its dead connection and ran again (SQLAlchemy then
    # replaced the pool's connections, so the load and save found live ones).
    assert seen.statements[0] == seen.statements[1] and seen.saves == 1
    assert not _pooled_ids(statement_engine(storage.engine)) & dropped
    assert SQLStorageBackend("s", **server.options).metadata == {"k": 1}


@contextmanager
def _before_the_save(storage: SQLStorageBackend, act: Callable[[Any, str, Any], None]) -> Iterator[None]:
    """Call ``act(connection, statement, parameters)`` before each one-statement save is sent."""

    def before(conn: Any, cursor: Any, statement: str, parameters: Any, *args: Any) -> None:
        if statement.lstrip().startswith(("WITH fence", "BEGIN NOT ATOMIC")):
            act(conn, statement, parameters)

    with every_statement(storage.engine, before):
        yield


def test_a_save_whose_connection_was_dead_runs_again_on_a_new_one(server: Database) -> None:
    """The save meets a connection the server dropped: nothing was applied, so it runs again."""
    storage = SQLStorageBackend("s", **server.options)
    storage.transact(lambda: storage.metadata.update(k=0))
    first: list[int] = []

    def drop_once(connection: Any, statement: str, parameters: Any) -> None:
        if not first:
            first.append(_server_id(connection.connection.dbapi_connection, connection.dialect.name))
            drop(first[0])

    with _dropper(server.url) as drop, traffic(storage.engine) as seen, \
            _before_the_save(storage, drop_once):
        storage.transact(lambda: storage.metadata.update(k=storage.metadata["k"] + 1))
    assert seen.saves == 2  # sent on the dead connection, then on a new one
    assert SQLStorageBackend("s", **server.options).metadata["k"] == 1


@pytest.mark.parametrize("optimistic", [False, True], ids=["under the lock", "optimistic"])
def test_a_save_applied_before_its_connection_was_lost_is_not_applied_twice(
    server: Database, optimistic: bool
) -> None:
    """The database applied the save, then the connection was lost before the reply.

    Simulated exactly: the very statement is applied on another connection,
    and the one sending it is dropped. Running it again is refused (the
    version moved on), so the outcome is unknown to the backend: it raises
    the lost connection's error. Under the lock that reaches the caller; the
    core's optimistic path reads the session back and finds its write there.
    """
    storage = SQLStorageBackend("s", **server.options)
    storage.transact(lambda: storage.metadata.update(k=0))
    applier = create_engine(server.url, isolation_level="AUTOCOMMIT")
    first: list[int] = []

    def apply_then_drop(connection: Any, statement: str, parameters: Any) -> None:
        if first:
            return
        first.append(_server_id(connection.connection.dbapi_connection, connection.dialect.name))
        with applier.connect() as other:
            other.exec_driver_sql(statement, parameters).all()
        drop(first[0])

    def change() -> None:
        storage.metadata["k"] = storage.metadata["k"] + 1

    try:
        with _dropper(server.url) as drop, traffic(storage.engine) as seen, \
                _before_the_save(storage, apply_then_drop):
            if optimistic:
                storage.transact(change)
            else:
                with storage.acquire_lock():
                    change()
                    with pytest.raises(StorageError, match=r"could not save session 's'"):
                        storage.save()
    finally:
        applier.dispose()
    assert seen.saves == 2  # sent, lost; sent again on a new connection, refused
    assert SQLStorageBackend("s", **server.options).metadata["k"] == 1  # applied once


def test_an_oversized_mariadb_save_that_lost_its_connection_at_commit_is_not_run_again(
    mariadb: Database,
) -> None:
    """A save too big for one MariaDB packet is a transaction of several statements.

    Losing the connection during its ``COMMIT`` leaves the outcome unknown:
    it is reported, never run again.
    """
    storage = SQLStorageBackend("s", **mariadb.options)
    limit = storage.capabilities.max_record_bytes
    assert limit is not None
    with storage.acquire_lock():
        storage.update_configuration({"t": {"after": ["x"], "run": "json.dumps"}})
        storage.metadata["k"] = 0
        storage.save()

    def drop_before_commit(connection: Any) -> None:
        drop(_server_id(connection.connection.dbapi_connection, connection.dialect.name))

    with _dropper(mariadb.url) as drop, traffic(storage.engine) as seen, storage.acquire_lock():
        storage.metadata["k"] = 1
        for _ in range(2):  # together over the packet budget, each under the record limit
            storage.create_instance("t", metadata={"pad": "p" * (limit * 2 // 3)})
        event.listen(storage.engine, "commit", drop_before_commit)
        try:
            with pytest.raises(StorageError, match=r"could not save session 's'"):
                storage.save()
        finally:
            event.remove(storage.engine, "commit", drop_before_commit)
    assert seen.saves == 1  # the outcome of that COMMIT is unknown: no second attempt
    assert not any(s.startswith("BEGIN NOT ATOMIC") for s in seen.statements)
    # (Here the server dropped the connection before COMMIT arrived: nothing was applied.)
    fresh = SQLStorageBackend("s", **mariadb.options)
    assert fresh.metadata == {"k": 0} and len(fresh.instances) == 0
