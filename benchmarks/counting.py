"""Round trips and bytes written, counted from each driver's own hooks.

Timing says how long; counts say *why*, and unlike times they do not depend
on a noisy machine: a fire that sends the same statements at 10 and at 10,000
instances does the same I/O. Every counter fills a :class:`Tally`:

* SQLAlchemy: ``before_cursor_execute`` (every statement), ``commit`` and
  ``rollback`` events; psycopg sends ``BEGIN`` as a round trip of its own and
  ``pool_pre_ping`` pings once per checkout, so those are counted too.
* Django caches on Redis and memcached: the drivers' own requests (redis-py
  commands and pipelines, pymemcache commands), see :class:`CacheCounter`.
* pymongo: a ``CommandListener``; botocore: ``before-send`` events (added by
  their targets, as those packages land).

Bytes written are the payload of write operations: string and bytes
parameters of INSERT / UPDATE / DELETE statements (8 per number), cache values
stored, BSON of write commands, HTTP bodies of write requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

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


def _writes(statement: str) -> bool:
    """True for a statement that writes: a plain write, a ``WITH`` whose CTEs
    write (triggers-sql's one-statement save on PostgreSQL), or a MariaDB
    compound statement (``BEGIN NOT ATOMIC``, its save there)."""
    text = statement.lstrip().upper()
    if text.startswith(_WRITES):
        return True
    if text.startswith(("WITH", "BEGIN NOT ATOMIC")):
        return any(word in text for word in _WRITES)
    return False


def sql_meter(engine: Engine) -> Meter:
    """A meter counting what the backend sends to ``engine``'s database.

    Round trips as triggers-sql defines them (:mod:`triggers_sql.round_trips`:
    statements on both of its engines, and what the driver sends by itself
    around a transaction); bytes written are the parameters of writing
    statements.
    """
    from triggers_sql import round_trips

    @contextmanager
    def meter() -> Iterator[Tally]:
        tally = Tally()

        def on_round_trip(statement: str | None, parameters: Any) -> None:
            written = payload_bytes(parameters) if statement and _writes(statement) else 0
            tally.add(1, written)

        stop = round_trips.listen(engine, on_round_trip)
        try:
            yield tally
        finally:
            stop()

    return meter


class CacheCounter:
    """Counts what a Django cache's driver sends (redis-py, pymemcache), for one cache target.

    triggers-cache talks to Redis and memcached through the driver's own
    client (scripts, locks, gets/cas), not only through Django's cache API,
    so the count is taken where every request goes out, whatever called it:

    * redis-py: one round trip per ``Redis.execute_command`` outside a
      pipeline, and one per ``Pipeline.execute``; bytes written are the
      values of SET/SETEX/PSETEX/APPEND/MSET and the ARGV of EVAL/EVALSHA;
    * pymemcache: one round trip per ``Client._store_cmd``, ``_fetch_cmd`` and
      ``_misc_cmd`` (each sends its commands and reads their replies once);
      bytes written are the stored values as serialized.

    Other caches (database, file, local memory) are not counted here.
    The counter is installed once per process, on the driver classes; the
    backend and the naive baseline of a target run in the benchmark's thread.
    """

    def __init__(self, cache: Any) -> None:
        _install_driver_counters()

    @contextmanager
    def meter(self) -> Iterator[Tally]:
        tally = Tally()
        _DRIVER_TALLIES.append(tally)
        try:
            yield tally
        finally:
            _DRIVER_TALLIES.remove(tally)


_DRIVER_TALLIES: list[Tally] = []
_DRIVERS_COUNTED: list[bool] = []


def _driver_tally() -> Tally | None:
    return _DRIVER_TALLIES[-1] if _DRIVER_TALLIES else None


def _redis_written(args: Sequence[Any]) -> int:
    name = str(args[0]).upper() if args else ""
    if name in ("SET", "APPEND", "SETNX") and len(args) > 2:
        return payload_bytes(args[2])
    if name in ("SETEX", "PSETEX") and len(args) > 3:
        return payload_bytes(args[3])
    if name == "MSET":
        return sum(payload_bytes(v) for v in args[2::2])
    if name in ("EVAL", "EVALSHA") and len(args) > 2:
        return sum(payload_bytes(v) for v in args[3 + int(args[2]):])
    return 0


def _install_driver_counters() -> None:
    if _DRIVERS_COUNTED:
        return
    _DRIVERS_COUNTED.append(True)
    try:
        import redis.client
    except ImportError:
        pass
    else:
        plain, flush = redis.client.Redis.execute_command, redis.client.Pipeline.execute

        def execute_command(self: Any, *args: Any, **options: Any) -> Any:
            tally = _driver_tally()
            if tally is not None and not isinstance(self, redis.client.Pipeline):
                tally.add(1, _redis_written(args))
            return plain(self, *args, **options)  # type: ignore[no-untyped-call]

        def execute(self: Any, *args: Any, **kwargs: Any) -> Any:
            tally = _driver_tally()
            if tally is not None and self.command_stack:
                tally.add(1, sum(_redis_written(command[0]) for command in self.command_stack))
            return flush(self, *args, **kwargs)

        redis.client.Redis.execute_command = execute_command  # type: ignore[method-assign]
        redis.client.Pipeline.execute = execute  # type: ignore[method-assign]
    try:
        from pymemcache.client.base import Client
    except ImportError:
        return
    store, fetch, misc = Client._store_cmd, Client._fetch_cmd, Client._misc_cmd

    def store_cmd(self: Any, name: bytes, values: dict[Any, Any], *args: Any, **kwargs: Any) -> Any:
        tally = _driver_tally()
        if tally is not None:
            tally.add(1, sum(payload_bytes(self.serde.serialize(k, v)[0]) for k, v in values.items()))
        return store(self, name, values, *args, **kwargs)

    def counted(method: Callable[..., Any]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            tally = _driver_tally()
            if tally is not None:
                tally.add(1)
            return method(self, *args, **kwargs)

        return call

    Client._store_cmd = store_cmd
    Client._fetch_cmd = counted(fetch)
    Client._misc_cmd = counted(misc)


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
