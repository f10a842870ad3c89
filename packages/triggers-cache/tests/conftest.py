"""Django caches for the triggers-cache tests: every cache Django ships, on real servers.

Django is configured once per process (here, at import, unless a Django
project or another package configured it first: then the aliases are added).
Every run uses its own KEY_PREFIX, cache table and folder, so runs sharing a
server never meet, and nothing is flushed.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from triggers_cache import configure
from triggers_conformance.servers import Server, port_answers, serve

sys.path.insert(0, str(Path(__file__).parent))

RUN = uuid.uuid4().hex[:10]
REDIS = os.environ.get("TRIGGERS_CACHE_REDIS_URL", "redis://127.0.0.1:6379/0")
MEMCACHED_PORT = int(os.environ.get("TRIGGERS_CACHE_MEMCACHED_PORT", "11211"))
CACHE_TABLE = f"triggers_cache_test_{RUN}"
FILE_CACHE_DIR = tempfile.mkdtemp(prefix="triggers-file-cache-")

CACHES = {
    "redis": {
        "BACKEND": "django.core.cache.backends.redis.RedisCache",
        "LOCATION": REDIS,
        "KEY_PREFIX": f"t{RUN}",
    },
    "django_redis": {
        "BACKEND": "django_redis.cache.RedisCache",
        "LOCATION": REDIS,
        "KEY_PREFIX": f"t{RUN}dr",
    },
    "memcached": {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": f"127.0.0.1:{MEMCACHED_PORT}",
        "KEY_PREFIX": f"t{RUN}",
    },
    # Django's own caches cull once MAX_ENTRIES (300) keys exist: set far
    # above what the tests store, as the README's checklist says.
    "database": {
        "BACKEND": "django.core.cache.backends.db.DatabaseCache",
        "LOCATION": CACHE_TABLE,
        "OPTIONS": {"MAX_ENTRIES": 10**9},
    },
    "file": {
        "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
        "LOCATION": FILE_CACHE_DIR,
        "OPTIONS": {"MAX_ENTRIES": 10**9},
    },
    "locmem": {
        "BACKEND": "django.core.cache.backends.locmem.LocMemCache",
        "LOCATION": RUN,
        "OPTIONS": {"MAX_ENTRIES": 10**9},
    },
}
DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": os.environ.get("TRIGGERS_CACHE_PG_NAME", "test"),
        "USER": os.environ.get("TRIGGERS_CACHE_PG_USER", "postgres"),
        "HOST": "127.0.0.1",
        "PORT": "5432",
    }
}

if not configure(CACHES, DATABASES):
    from django.conf import settings

    settings.CACHES.update(CACHES)

SERVER_OF = {
    "redis": "redis",
    "django_redis": "redis",
    "memcached": "memcached",
    "database": "postgresql",
}


def memcached_command() -> list[str]:
    command = ["memcached", "-l", "127.0.0.1", "-p", str(MEMCACHED_PORT), "-m", "64", "-U", "0"]
    return [*command, "-u", "memcache"] if os.geteuid() == 0 else command


@pytest.fixture(scope="session")
def redis_server() -> Iterator[None]:
    with serve(Server("Redis", "127.0.0.1", 6379, install="set TRIGGERS_CACHE_REDIS_URL")):
        yield


@pytest.fixture(scope="session")
def memcached_server() -> Iterator[None]:
    server = Server(
        "memcached",
        "127.0.0.1",
        MEMCACHED_PORT,
        command=memcached_command(),
        ready=lambda: port_answers("127.0.0.1", MEMCACHED_PORT),
        install="apt-get install memcached, or run .ci/install",
    )
    with serve(server):
        yield


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[None]:
    from django.core.management import call_command
    from django.db import connection

    with serve(Server("PostgreSQL", "127.0.0.1", 5432)):
        call_command("createcachetable", verbosity=0)
        yield
        with connection.cursor() as cursor:
            cursor.execute(f'DROP TABLE IF EXISTS "{CACHE_TABLE}"')


@pytest.fixture(scope="session", autouse=True)
def remove_file_cache() -> Iterator[None]:
    yield
    shutil.rmtree(FILE_CACHE_DIR, ignore_errors=True)


def _with_server(request: pytest.FixtureRequest) -> str:
    alias: str = request.param
    server = SERVER_OF.get(alias)
    if server is not None:
        request.getfixturevalue(f"{server}_server")
    return alias


@pytest.fixture(params=list(CACHES))
def cache_alias(request: pytest.FixtureRequest) -> str:
    """Each Django cache in turn, with its server running."""
    return _with_server(request)


FENCED = ["redis", "django_redis", "memcached", "database", "locmem"]
"""The caches whose saves are fenced (all but the file cache)."""


@pytest.fixture(params=FENCED)
def fenced_alias(request: pytest.FixtureRequest) -> str:
    """Each cache with fenced saves in turn, with its server running."""
    return _with_server(request)


@pytest.fixture(params=["redis", "memcached"])
def server_alias(request: pytest.FixtureRequest) -> str:
    """Redis and memcached (the caches with a compare-and-set), with their servers running."""
    return _with_server(request)
