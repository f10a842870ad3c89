"""Round trips and bytes written, counted from each driver's own hooks.

Timing says how long; counts say *why*, and unlike times they do not depend
on a noisy machine: a fire that sends the same statements at 10 and at 10,000
instances does the same I/O. Every counter fills a :class:`Tally`:

* SQLAlchemy: ``before_cursor_execute`` (every statement), ``commit`` and
  ``rollback`` events; psycopg sends ``BEGIN`` as a round trip of its own and
  ``pool_pre_ping`` pings once per checkout, so those are counted too.
* Django caches: a wrapper around the cache object's methods (one call, one
  round trip; ``get_many`` / ``set_many`` are one round trip on every shared
  cache).
* pymongo: a ``CommandListener``; botocore: ``before-send`` events (added by
  their targets, as those packages land).

Bytes written are the payload of write operations: string and bytes
parameters of INSERT / UPDATE / DELETE statements (8 per number), cache values
stored, BSON of write commands, HTTP bodies of write requests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, event

__all__ = [
    "CacheCounter",
    "Meter",
    "Tally",
    "dynamodb_meter",
    "mongo_meter",
    "no_io",
    "payload_bytes",
    "sql_meter",
]


@dataclass
class Tally:
    """What one or more operations sent to the store."""

    round_trips: int = 0
    bytes_written: int = 0

    def add(self, round_trips: int = 1, bytes_written: int = 0) -> None:
        self.round_trips += round_trips
        self.bytes_written += bytes_written


Meter = Callable[[], AbstractContextManager[Tally]]
"""Counts what the block sends to a target's store (``with meter() as tally:``)."""


def payload_bytes(value: Any) -> int:
    """Bytes of the data in ``value``: text as UTF-8, numbers as 8, containers summed."""
    if value is None:
        return 0
    if isinstance(value, str):
        return len(value.encode("utf-8"))
    if isinstance(value, bytes | bytearray | memoryview):
        return len(value)
    if isinstance(value, Mapping):
        return sum(payload_bytes(item) for item in value.values())
    if isinstance(value, Sequence):
        return sum(payload_bytes(item) for item in value)
    return 8


_WRITES = ("INSERT", "UPDATE", "DELETE", "REPLACE")


def sql_meter(engine: Engine) -> Meter:
    """A meter counting what the backend sends to ``engine``'s database, from SQLAlchemy's events.

    triggers-sql runs single statements through a companion engine in
    autocommit mode (:func:`triggers_sql.engines.statement_engine`; SQLite:
    the same engine without ``BEGIN``), so both engines are listened to.
    Round trips are the statements executed, plus what the driver sends on
    its own around a transaction of the main engine: ``BEGIN`` (psycopg),
    ``COMMIT``, ``ROLLBACK``, and on MySQL/MariaDB the ``ROLLBACK`` PyMySQL
    sends when a connection goes back to the pool (psycopg skips it on an
    idle connection). Autocommit connections send none of those.
    """
    from triggers_sql.engines import statement_engine

    statements = statement_engine(engine)
    dialect = engine.dialect.name
    begin_is_round_trip = dialect == "postgresql"  # psycopg sends BEGIN itself
    reset_is_round_trip = dialect in ("mysql", "mariadb")

    def single_statement(conn: Any) -> bool:
        """An SQLite single-statement connection: its begin/rollback events send nothing."""
        return bool(conn.get_execution_options().get("triggers_single_statement", False))

    @contextmanager
    def meter() -> Iterator[Tally]:
        tally = Tally()

        def on_execute(
            conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
        ) -> None:
            written = payload_bytes(parameters) if statement.lstrip().upper().startswith(_WRITES) else 0
            tally.add(1, written)

        def on_transaction_end(conn: Any) -> None:
            if not single_statement(conn):
                tally.add()

        def on_begin(conn: Any) -> None:
            if begin_is_round_trip:
                tally.add()

        def on_reset(*args: Any) -> None:
            if reset_is_round_trip:
                tally.add()

        listeners: list[tuple[Any, str, Callable[..., None]]] = [
            (engine, "before_cursor_execute", on_execute),
            (engine, "commit", on_transaction_end),
            (engine, "rollback", on_transaction_end),
            (engine, "begin", on_begin),
            (engine.pool, "reset", on_reset),
        ]
        if statements is not engine:
            listeners.append((statements, "before_cursor_execute", on_execute))
        for target, name, listener in listeners:
            event.listen(target, name, listener)
        try:
            yield tally
        finally:
            for target, name, listener in listeners:
                event.remove(target, name, listener)

    return meter


_CACHE_CALLS = {
    # method: index of the value argument written (None: a read or a delete)
    "get": None,
    "get_many": None,
    "has_key": None,
    "touch": None,
    "delete": None,
    "delete_many": None,
    "add": 1,
    "set": 1,
    "set_many": 0,
}


class CacheCounter:
    """Counts the calls made on one Django cache object (installed on the object itself).

    Django keeps a cache object per thread; the backend and the naive
    baseline of a cache target run in the benchmark's thread, so wrapping
    that thread's object sees every call they make.
    """

    def __init__(self, cache: Any) -> None:
        self._active: Tally | None = None
        self._mutex = threading.Lock()
        for name, value_index in _CACHE_CALLS.items():
            setattr(cache, name, self._wrap(getattr(cache, name), value_index))

    def _wrap(self, method: Callable[..., Any], value_index: int | None) -> Callable[..., Any]:
        def counted(*args: Any, **kwargs: Any) -> Any:
            tally = self._active
            if tally is not None:
                written = 0
                if value_index is not None:
                    value = args[value_index] if len(args) > value_index else kwargs.get("value")
                    written = payload_bytes(value)
                tally.add(1, written)
            return method(*args, **kwargs)

        return counted

    @contextmanager
    def meter(self) -> Iterator[Tally]:
        with self._mutex:
            self._active = Tally()
        try:
            yield self._active
        finally:
            self._active = None


class _ActiveTally:
    """A tally that a meter switches on for the length of a ``with`` block."""

    def __init__(self) -> None:
        self.active: Tally | None = None

    @contextmanager
    def meter(self) -> Iterator[Tally]:
        self.active = Tally()
        try:
            yield self.active
        finally:
            self.active = None


_MONGO_WRITES = frozenset({"insert", "update", "delete", "findAndModify", "bulkWrite"})


def mongo_meter() -> Meter:
    """A meter counting pymongo commands (listener registered for clients created later).

    pymongo attaches globally registered listeners to each client when it is
    created, so this must run before the backend's client exists.
    """
    import bson
    from pymongo import monitoring

    state = _ActiveTally()

    class Listener(monitoring.CommandListener):
        def started(self, event: monitoring.CommandStartedEvent) -> None:
            tally = state.active
            if tally is not None:
                written = len(bson.encode(event.command)) if event.command_name in _MONGO_WRITES else 0
                tally.add(1, written)

        def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
            pass

        def failed(self, event: monitoring.CommandFailedEvent) -> None:
            pass

    monitoring.register(Listener())
    return state.meter


_DYNAMODB_WRITES = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem")


def dynamodb_meter(client: Any) -> Meter:
    """A meter counting the HTTP requests a boto3 DynamoDB client sends (``before-send``)."""
    state = _ActiveTally()

    def before_send(request: Any, **kwargs: Any) -> None:
        tally = state.active
        if tally is not None:
            target = request.headers.get("X-Amz-Target") or b""
            if isinstance(target, bytes):
                target = target.decode("ascii")
            operation = target.rpartition(".")[2]
            body = request.body or b""
            written = len(body) if operation in _DYNAMODB_WRITES else 0
            tally.add(1, written)

    client.meta.events.register("before-send.dynamodb", before_send)
    return state.meter


@contextmanager
def no_io() -> Iterator[Tally]:
    """The meter of a store in this process's memory: nothing goes over a wire."""
    yield Tally()
