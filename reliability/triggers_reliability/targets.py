"""The targets: every backend on every server the suite runs against, in one table.

Adding a backend (or a server for one) is one :class:`Target` entry in
:data:`TARGETS`: how to reach its shared server, which private server the
restart scenario may start and stop, how to open a store on an endpoint (a
fresh table prefix, key prefix or file, so runs never meet), and how to reach
its raw stored data for the corruption scenario (:mod:`.corruption`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from triggers import storage_backends
from triggers.storage import TriggerStorageBackend
from triggers_conformance.catalogue import MYSQL_URL, POSTGRESQL_URL
from triggers_reliability import corruption

__all__ = ["MYSQL_URL", "POSTGRESQL_URL", "REDIS_URL", "TARGETS", "Target"]

REDIS_URL = os.environ.get("TRIGGERS_CACHE_REDIS_URL", "redis://127.0.0.1:6379/0")

Opener = Callable[[str, Path], AbstractContextManager[dict[str, Any]]]
"""``open(endpoint, folder)``: a fresh, private store there, as backend options."""


@dataclass(frozen=True)
class Target:
    """One backend on one kind of server.

    ``server`` names the session fixture (in ``conftest.py``) that finds or
    starts the shared server and returns its endpoint; ``None`` means the
    target needs no server (an SQLite file). ``private`` names the kind of
    :mod:`.private_servers` instance the restart scenario uses, ``None`` when
    there is nothing to restart. ``durable`` says whether committed data
    survives a restart (Redis without persistence and memcached lose it by
    design). ``keeps_schema`` says whether the store's tables survive it: moto
    keeps everything in memory, the table included, so after a restart the
    backend must report the missing table (a ``SchemaError`` saying how to
    create it) until an operator creates it again, and never create it by
    itself. ``min_lease`` is the shortest lease the store honours.
    ``stale_first_call`` marks a client that notices a connection the server
    closed only when it next uses it (pymemcache): the first operation of a
    process after a restart fails, clearly, and the next ones work.
    """

    name: str
    backend: str
    server: str | None
    private: str | None
    open: Opener
    raw: Callable[[dict[str, Any]], corruption.RawStore]
    durable: bool = True
    keeps_schema: bool = True
    min_lease: float = 0.5
    stale_first_call: bool = False
    known_failures: Mapping[str, str] = field(default_factory=dict)
    """Test function name -> why it fails on this target (skipped, with the reason)."""

    def storage(self, options: dict[str, Any], uid: str, **extra: Any) -> TriggerStorageBackend:
        """A new backend object for ``uid`` (as an application would make one)."""
        return storage_backends.get(self.backend, uid, **options, **extra)

    def __str__(self) -> str:
        return self.name


# -- sql ----------------------------------------------------------------------


@contextmanager
def _sql_tables(endpoint: str, folder: Path) -> Iterator[dict[str, Any]]:
    """Fresh tables (a new prefix) on ``endpoint``; an SQLite file in ``folder`` for "sqlite"."""
    prefix = f"r{uuid.uuid4().hex[:10]}_"
    url = f"sqlite:///{folder / 'triggers.db'}" if endpoint == "sqlite" else endpoint
    try:
        yield {"url": url, "table_prefix": prefix}
    finally:
        if endpoint != "sqlite":
            _drop_tables(url, prefix)


def _drop_tables(url: str, prefix: str) -> None:
    from sqlalchemy import create_engine

    from triggers_sql.schema import tables

    engine = create_engine(url, connect_args={"connect_timeout": 5})
    try:
        tables(prefix, None).metadata.drop_all(engine)
    except Exception:
        pass  # a stopped private server takes its tables with it
    finally:
        engine.dispose()


# -- cache (Django) -------------------------------------------------------------

CACHE_BACKENDS = {
    "redis": "django.core.cache.backends.redis.RedisCache",
    "memcached": "django.core.cache.backends.memcached.PyMemcacheCache",
    "database": "django.core.cache.backends.db.DatabaseCache",
}


def configure_django() -> None:
    """Configure Django for the cache targets, unless another conftest did it first."""
    from triggers_cache import configure

    configure(
        {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}},
        {
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": os.environ.get("TRIGGERS_CACHE_PG_NAME", "test"),
                "USER": os.environ.get("TRIGGERS_CACHE_PG_USER", "postgres"),
                "HOST": "127.0.0.1",
                "PORT": "5432",
            }
        },
    )


def _cache(kind: str) -> Opener:
    @contextmanager
    def open_cache(endpoint: str, folder: Path) -> Iterator[dict[str, Any]]:
        """A new Django cache alias on ``endpoint``, with its own key prefix (or table)."""
        from django.conf import settings

        configure_django()
        run = uuid.uuid4().hex[:10]
        alias = f"reliability_{kind}_{run}"
        location = f"reliability_cache_{run}" if kind == "database" else endpoint
        settings.CACHES[alias] = {
            "BACKEND": CACHE_BACKENDS[kind],
            "LOCATION": location,
            "KEY_PREFIX": f"r{run}",
            # The database cache culls keys once it holds MAX_ENTRIES (300):
            # configured as the triggers-cache checklist says, never to cull.
            **({"OPTIONS": {"MAX_ENTRIES": 10**9}} if kind == "database" else {}),
        }
        if kind == "database":
            from django.core.management import call_command

            call_command("createcachetable", location, verbosity=0)
        try:
            yield {"cache": alias, "key_prefix": "triggers"}
        finally:
            if kind == "database":
                from django.db import connection

                with connection.cursor() as cursor:
                    cursor.execute(f'DROP TABLE IF EXISTS "{location}"')

    return open_cache


# -- mongo ----------------------------------------------------------------------------


@contextmanager
def _mongo_collections(endpoint: str, folder: Path) -> Iterator[dict[str, Any]]:
    """A new database on ``endpoint``, dropped afterwards.

    Before the drop, the sessions that last held each lease are killed, as
    the next lease taker would: a worker SIGKILLed in a save leaves its
    transaction open, SecantusDB never aborts it by itself, and a drop that
    meets it retries without end (a soak run's teardown kept the server busy
    at full CPU for 20 minutes; RESULTS.md, #13).
    """
    run = uuid.uuid4().hex[:10]
    options = {"url": endpoint, "database": f"reliability_{run}", "collection": f"r{run}"}
    try:
        yield options
    finally:
        import pymongo
        from pymongo import MongoClient

        from triggers_mongo import layout

        client: MongoClient[dict[str, Any]] = MongoClient(endpoint)
        try:
            with pymongo.timeout(60):
                names = layout.collection_names(options["collection"])
                headers = client[options["database"]][names.sessions]
                holders = [
                    header["lease_session"]
                    for header in headers.find({"lease_session": {"$ne": None}})
                ]
                if holders:
                    client.admin.command("killSessions", holders)
                client.drop_database(options["database"])
        except Exception:
            pass  # a stopped private server
        finally:
            client.close()


# -- dynamodb -------------------------------------------------------------------------

DYNAMODB_REGION = "us-east-1"


@contextmanager
def _dynamodb_table(endpoint: str, folder: Path) -> Iterator[dict[str, Any]]:
    """A new table on the DynamoDB-API server at ``endpoint``, deleted afterwards."""
    from triggers_dynamodb import create_table
    from triggers_dynamodb.clients import client_for

    # Local servers accept any credentials.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    name = f"reliability-{uuid.uuid4().hex[:12]}"
    client = client_for(DYNAMODB_REGION, endpoint)
    create_table(client, name)
    try:
        yield {"table_name": name, "endpoint_url": endpoint, "region_name": DYNAMODB_REGION}
    finally:
        try:
            client.delete_table(TableName=name)
        except Exception:
            pass  # a restarted (emptied) private server


# -- the table ------------------------------------------------------------------

TARGETS: list[Target] = [
    Target("sql-sqlite", "sql", None, None, _sql_tables, corruption.SQLRawStore),
    Target("sql-postgresql", "sql", "postgresql_server", "postgresql", _sql_tables, corruption.SQLRawStore),
    Target("sql-mariadb", "sql", "mysql_server", "mariadb", _sql_tables, corruption.SQLRawStore),
    Target("cache-redis", "cache", "redis_server", "redis", _cache("redis"), corruption.CacheRawStore,
           durable=False, min_lease=1.0),
    Target("cache-memcached", "cache", "memcached_server", "memcached", _cache("memcached"),
           corruption.CacheRawStore, durable=False, min_lease=1.0, stale_first_call=True),
    Target("cache-database", "cache", "postgresql_server", None, _cache("database"),
           corruption.CacheRawStore, min_lease=1.0),
    Target("dynamodb-moto", "dynamodb", "dynamodb_server", "moto", _dynamodb_table,
           corruption.DynamoDBRawStore, durable=False, keeps_schema=False),
    Target("mongo-secantusdb", "mongo", "mongo_server", "secantus", _mongo_collections,
           corruption.MongoRawStore),
]
"""Every target, in the order the tests run them."""
