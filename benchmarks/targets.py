"""What the benchmark runs against: a backend on one store, with its floor and meter.

A :class:`Target` bundles, for one store: how to open the backend's session
objects (with the options users would give), the naive baseline on the same
store, the raw-driver floor, and the meter counting what goes over the wire.
:func:`open_targets` builds every target whose package is installed and
whose server answers (or can be started, through
:mod:`triggers_conformance.servers`, exactly as the tests do), and says why
each other target was left out.

Every name a run creates (tables, keys) carries the run's prefix, and is
removed at the end of the run, so runs never meet on a shared server.
"""

from __future__ import annotations

import importlib.util
import os
import sys
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from benchmarks.counting import CacheCounter, Meter, sql_meter
from benchmarks.floor import Floor, MemcachedFloor, RedisFloor, SQLFloor
from benchmarks.naive import CacheBlobs, NaiveBackend, SQLBlobs
from triggers.storage import TriggerStorageBackend
from triggers_conformance import catalogue
from triggers_conformance.catalogue import MYSQL_URL, POSTGRESQL_URL
from triggers_conformance.servers import Server, port_answers, serve

__all__ = ["TARGET_NAMES", "Target", "open_targets"]

REDIS_URL = os.environ.get("TRIGGERS_CACHE_REDIS_URL", "redis://127.0.0.1:6379/0")
# Servers the benchmark starts itself get ports of their own (not the tests'),
# so a test run that stops its servers never pulls one from under a benchmark.
MEMCACHED_PORT = int(os.environ.get("TRIGGERS_CACHE_MEMCACHED_PORT", "11311"))
SECANTUS_PORT = 27118
MONGO_URL = os.environ.get("TRIGGERS_MONGO_URL", f"mongodb://127.0.0.1:{SECANTUS_PORT}")
MOTO_PORT = 5155
DYNAMODB_ENDPOINT = os.environ.get("TRIGGERS_DYNAMODB_ENDPOINT", f"http://127.0.0.1:{MOTO_PORT}")
DYNAMODB_REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")


@dataclass
class Target:
    """One backend on one store, and what it is compared with on that store."""

    name: str
    store: str
    open_session: Callable[[str], TriggerStorageBackend]
    """A session object of the backend for a uid (options as a user would give them)."""
    open_naive: Callable[[str], TriggerStorageBackend]
    """The two-method whole-blob baseline on the same store."""
    open_floor: Callable[[], Floor]
    meter: Meter
    shared_across_processes: bool = True
    max_records_per_save: int | None = None
    """Largest save the store takes at once (DynamoDB: one transaction's items)."""
    max_instances: tuple[int, str] | None = None
    """Largest session worth building on this store, and why (larger sizes are not measured)."""
    cleanups: list[Callable[[], None]] = field(default_factory=list)
    steady_state: Callable[[], None] | None = None
    """Brings the store to the steady state of a live database once the sessions are
    built and before anything is timed (SQL: fresh planner statistics)."""


@dataclass(frozen=True)
class Run:
    """Names and places private to one benchmark run."""

    prefix: str
    workdir: Path

    @classmethod
    def new(cls, workdir: Path) -> Run:
        return cls(prefix=f"b{uuid.uuid4().hex[:8]}_", workdir=workdir)


def _sql(name: str, store: str, url: str, run: Run) -> Target:
    from sqlalchemy import create_engine

    from triggers_sql import SQLStorageBackend
    from triggers_sql.engines import engine_for
    from triggers_sql.schema import tables

    options: dict[str, Any] = {"url": url, "table_prefix": run.prefix}
    engine = engine_for(url)
    blobs = SQLBlobs(engine, run.prefix)

    def drop() -> None:
        dropper = create_engine(url)
        try:
            tables(run.prefix, None).metadata.drop_all(dropper)
        finally:
            dropper.dispose()
        blobs.drop()

    def analyze() -> None:
        """Fresh planner statistics for the tables just filled, as a live database has.

        The sessions are built seconds before the timing starts; on a live
        database autovacuum (PostgreSQL) or InnoDB's automatic statistics would
        have analyzed tables that grew this much. Without it PostgreSQL's fire
        at 10,000 instances took 1.2x to 2.6x the fire at 10 from one run to
        the next (depending on whether autovacuum came by first), with it
        1.0x (benchmarks/RESULTS.md).
        """
        names = [table.name for table in tables(run.prefix, None).metadata.sorted_tables]
        statement = {
            "postgresql": "ANALYZE {}",
            "mysql": "ANALYZE TABLE {}",
            "mariadb": "ANALYZE TABLE {}",
            "sqlite": "ANALYZE {}",
        }.get(engine.dialect.name)
        if statement is None:
            return
        with engine.connect() as connection:
            for name in names:
                quoted = engine.dialect.identifier_preparer.quote(name)
                connection.exec_driver_sql(statement.format(quoted))
            connection.commit()

    return Target(
        name=name,
        store=store,
        open_session=lambda uid: SQLStorageBackend(uid, **options),
        open_naive=lambda uid: NaiveBackend(uid, blobs=blobs),
        open_floor=lambda: SQLFloor(engine, run.prefix),
        meter=sql_meter(engine),
        cleanups=[drop],
        steady_state=analyze,
    )


def _configure_django(run: Run) -> None:
    from django.conf import settings

    from triggers_cache import configure

    caches = {
        "bench_redis": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": run.prefix,
        },
        "bench_memcached": {
            "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
            "LOCATION": f"127.0.0.1:{MEMCACHED_PORT}",
            "KEY_PREFIX": run.prefix,
        },
    }
    if not configure(caches):
        settings.CACHES.update(caches)


def _cache(name: str, store: str, alias: str, run: Run, floor: Callable[[], Floor]) -> Target:
    from triggers_cache import CacheStorageBackend
    from triggers_cache.caches import cache_for

    _configure_django(run)
    counter = CacheCounter(cache_for(alias))
    blobs = CacheBlobs(alias, run.prefix)
    return Target(
        name=name,
        store=store,
        open_session=lambda uid: CacheStorageBackend(uid, cache=alias),
        open_naive=lambda uid: NaiveBackend(uid, blobs=blobs),
        open_floor=floor,
        meter=counter.meter,
        cleanups=[partial(_forget_keys, cache_for(alias), run.prefix)],
    )


def _forget_keys(cache: Any, prefix: str) -> None:
    """Delete this run's keys (Django prefixes them ``KEY_PREFIX:``); the sessions have no expiry.

    Redis can list them; memcached cannot, and forgets them by itself.
    """
    client = getattr(cache, "_cache", None)
    get_client = getattr(client, "get_client", None)
    if get_client is None:
        return
    redis = get_client(write=True)
    for key in redis.scan_iter(match=f"{prefix}:*", count=1000):
        redis.delete(key)


def _memcached_server() -> Server:
    command = ["memcached", "-l", "127.0.0.1", "-p", str(MEMCACHED_PORT), "-m", "256", "-U", "0"]
    if os.geteuid() == 0:
        command += ["-u", "memcache"]
    return Server(
        "memcached",
        "127.0.0.1",
        MEMCACHED_PORT,
        command=command,
        ready=lambda: port_answers("127.0.0.1", MEMCACHED_PORT),
        install="apt-get install memcached",
    )


def _mongo_server() -> Server:
    return catalogue.mongo(MONGO_URL, secantus_port=SECANTUS_PORT)


def _mongo(run: Run) -> Target:
    from pymongo import MongoClient

    from benchmarks.counting import mongo_meter
    from benchmarks.floor import MongoFloor
    from benchmarks.naive import MongoBlobs
    from triggers_mongo import MongoStorageBackend

    meter = mongo_meter()  # before the backend's client is created
    database = f"{run.prefix}db"
    options: dict[str, Any] = {"url": MONGO_URL, "database": database, "collection": "triggers"}
    client: Any = MongoClient(MONGO_URL)
    blobs = MongoBlobs(client[database]["naive"])
    return Target(
        name="mongo",
        store="MongoDB protocol (SecantusDB)" if "TRIGGERS_MONGO_URL" not in os.environ else "MongoDB",
        open_session=lambda uid: MongoStorageBackend(uid, **options),
        open_naive=lambda uid: NaiveBackend(uid, blobs=blobs),
        open_floor=lambda: MongoFloor(MONGO_URL, database, "floor"),
        meter=meter,
        cleanups=[client.close, lambda: client.drop_database(database)],  # run last to first
    )


def _moto_server() -> Server:
    from urllib.parse import urlsplit

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    if "TRIGGERS_DYNAMODB_ENDPOINT" not in os.environ:
        return catalogue.moto(MOTO_PORT)  # one request at a time, as DynamoDB applies each
    parts = urlsplit(DYNAMODB_ENDPOINT)
    return Server("DynamoDB", parts.hostname or "127.0.0.1", parts.port or 80)


def _dynamodb(run: Run) -> Target:
    from benchmarks.counting import dynamodb_meter
    from benchmarks.floor import DynamoDBFloor
    from benchmarks.naive import DynamoDBBlobs
    from triggers_dynamodb import DynamoDBStorageBackend, create_table

    patient_clients: dict[int, Any] = {}

    def patient_client() -> Any:
        """This process's client with a long read timeout (moto can be slow, see below).

        moto's server copies a whole table on every transaction, so building
        a 10,000-instance session (transactions of 90 items) can keep one
        request waiting longer than the backend's 30 s read timeout; botocore
        would then resend it while moto still works on the first copy. The
        benchmark waits instead (the backend takes any client it is given).
        """
        pid = os.getpid()
        if pid not in patient_clients:
            import boto3
            from botocore.config import Config

            patient_clients[pid] = boto3.session.Session().client(
                "dynamodb", region_name=DYNAMODB_REGION, endpoint_url=DYNAMODB_ENDPOINT,
                config=Config(retries={"mode": "standard"}, read_timeout=600),
            )
        return patient_clients[pid]

    client = patient_client()
    blob_table = f"{run.prefix}blobs"
    create_table(client, blob_table)
    blobs = DynamoDBBlobs(client, blob_table, run.prefix)

    def open_session(uid: str) -> TriggerStorageBackend:
        # A table per session: moto copies a whole table on every transaction,
        # so sessions sharing a table would slow each other down (DynamoDB's
        # own cost does not depend on the table's size).
        storage: TriggerStorageBackend = DynamoDBStorageBackend(
            uid, table_name=f"{run.prefix}{uid}"[-255:], client=patient_client(), create_table=True,
        )
        return storage

    def drop() -> None:
        for page in client.get_paginator("list_tables").paginate():
            for name in page["TableNames"]:
                if name.startswith(run.prefix):
                    client.delete_table(TableName=name)

    return Target(
        name="dynamodb",
        store="DynamoDB API (moto server)" if "TRIGGERS_DYNAMODB_ENDPOINT" not in os.environ else "DynamoDB",
        open_session=open_session,
        open_naive=lambda uid: NaiveBackend(uid, blobs=blobs),
        open_floor=lambda: DynamoDBFloor(client, blob_table, f"{run.prefix}floor"),
        meter=dynamodb_meter(client),
        max_records_per_save=90,
        max_instances=None if "TRIGGERS_DYNAMODB_ENDPOINT" in os.environ else (
            1_000,
            "moto's server copies the whole table on every transaction (52 s for one "
            "of 99 items in a 10,000-item table, so building that session takes over "
            "an hour); real DynamoDB's cost does not grow with the table",
        ),
        cleanups=[drop],
    )


@dataclass(frozen=True)
class _Spec:
    package: str
    server: Callable[[], Server | None]
    build: Callable[[Run], Target]


def _memory(run: Run) -> Target:
    from benchmarks.counting import no_io
    from benchmarks.floor import MemoryFloor
    from benchmarks.naive import MemoryBlobs
    from triggers.memory import MemoryStorageBackend

    blobs = MemoryBlobs()
    return Target(
        name="memory",
        store="this process (core only, no I/O)",
        open_session=lambda uid: MemoryStorageBackend(uid, namespace=run.prefix),
        open_naive=lambda uid: NaiveBackend(uid, blobs=blobs),
        open_floor=MemoryFloor,
        meter=no_io,
        shared_across_processes=False,
    )


_SPECS: dict[str, _Spec] = {
    "memory": _Spec("triggers", lambda: None, _memory),
    "sql-sqlite": _Spec(
        "triggers_sql",
        lambda: None,
        lambda run: _sql("sql-sqlite", "SQLite file (WAL)", f"sqlite:///{run.workdir / 'bench.db'}", run),
    ),
    "sql-postgresql": _Spec(
        "triggers_sql",
        lambda: catalogue.postgresql(POSTGRESQL_URL),
        lambda run: _sql("sql-postgresql", "PostgreSQL (psycopg 3)", POSTGRESQL_URL, run),
    ),
    "sql-mariadb": _Spec(
        "triggers_sql",
        lambda: catalogue.mariadb(MYSQL_URL),
        lambda run: _sql("sql-mariadb", "MariaDB (PyMySQL)", MYSQL_URL, run),
    ),
    "cache-redis": _Spec(
        "triggers_cache",
        lambda: Server("Redis", "127.0.0.1", 6379),
        lambda run: _cache(
            "cache-redis", "Redis (Django RedisCache)", "bench_redis", run,
            lambda: RedisFloor(REDIS_URL, f"{run.prefix}floor"),
        ),
    ),
    "cache-memcached": _Spec(
        "triggers_cache",
        _memcached_server,
        lambda run: _cache(
            "cache-memcached", "memcached (Django PyMemcacheCache)", "bench_memcached", run,
            lambda: MemcachedFloor("127.0.0.1", MEMCACHED_PORT, f"{run.prefix}floor"),
        ),
    ),
    "mongo": _Spec("triggers_mongo", _mongo_server, _mongo),
    "dynamodb": _Spec("triggers_dynamodb", _moto_server, _dynamodb),
}

TARGET_NAMES = tuple(_SPECS)
"""Every target the benchmark knows, in the order they are run and reported."""


def _tidy(name: str, cleanup: Callable[[], None]) -> None:
    """Remove what a target created; a failure is reported, never hides the results."""
    try:
        cleanup()
    except Exception as error:
        print(f"{name}: cleanup failed: {type(error).__name__}: {error}", file=sys.stderr)


@contextmanager
def open_targets(
    names: list[str] | None, run: Run
) -> Iterator[tuple[list[Target], dict[str, str]]]:
    """Yield the usable targets among ``names`` (default: all) and why others were skipped.

    Servers started here are stopped, and everything the targets created
    is removed, when the block ends.
    """
    unknown = sorted(set(names or ()) - set(_SPECS))
    if unknown:
        raise ValueError(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(_SPECS)}")
    targets: list[Target] = []
    skipped: dict[str, str] = {}
    with ExitStack() as stack:
        for name, spec in _SPECS.items():
            if names and name not in names:
                continue
            if importlib.util.find_spec(spec.package) is None:
                skipped[name] = f"package {spec.package} is not installed"
                continue
            server = spec.server()
            if server is not None:
                try:
                    stack.enter_context(serve(server))
                except (pytest.skip.Exception, pytest.fail.Exception) as missing:
                    skipped[name] = str(missing.msg)
                    continue
            try:
                target = spec.build(run)
            except Exception as error:
                skipped[name] = f"could not be set up: {type(error).__name__}: {error}"
                continue
            for cleanup in target.cleanups:
                stack.callback(_tidy, name, cleanup)
            targets.append(target)
        yield targets, skipped
