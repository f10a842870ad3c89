"""Fixtures of the triggers-django tests: a Django project on PostgreSQL and Redis."""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from triggers_conformance.servers import Server, serve

# The project writer beside this file (pytest runs in importlib mode).
sys.path.insert(0, str(Path(__file__).parent))
from django_project import DjangoProject, write_project


@pytest.fixture(scope="session")
def postgresql() -> Iterator[None]:
    with serve(Server("PostgreSQL", "127.0.0.1", 5432)):
        yield


@pytest.fixture(scope="session")
def redis_server() -> Iterator[None]:
    with serve(Server("Redis", "127.0.0.1", 6379)):
        yield


@pytest.fixture
def project(tmp_path: Path, postgresql: None, redis_server: None) -> Iterator[DjangoProject]:
    """A fresh project whose tables live in a PostgreSQL schema of its own."""
    import psycopg

    schema = f"tdj_{uuid.uuid4().hex[:12]}"
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    try:
        yield write_project(tmp_path / "project", schema)
    finally:
        with psycopg.connect("postgresql://postgres@127.0.0.1:5432/test", autocommit=True) as connection:
            connection.execute(f"DROP SCHEMA {schema} CASCADE")
