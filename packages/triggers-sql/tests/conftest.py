"""Databases for the triggers-sql tests: an SQLite file, PostgreSQL and MariaDB.

PostgreSQL and MariaDB are the machine's servers (override with
``TRIGGERS_SQL_POSTGRESQL_URL`` / ``TRIGGERS_SQL_MYSQL_URL``). Every test run
uses its own table prefix and drops its tables afterwards, so runs on a shared
server never meet.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import create_engine

from triggers_conformance import catalogue
from triggers_conformance.catalogue import MYSQL_URL, POSTGRESQL_URL
from triggers_conformance.servers import serve

sys.path.insert(0, str(Path(__file__).parent))

from sql_databases import Database, new_prefix


def _drop(url: str, prefix: str) -> None:
    from triggers_sql.schema import tables

    engine = create_engine(url)
    try:
        tables(prefix, None).metadata.drop_all(engine)
    finally:
        engine.dispose()


@pytest.fixture(scope="session")
def postgresql_server() -> Iterator[str]:
    with serve(catalogue.postgresql()):
        yield POSTGRESQL_URL


@pytest.fixture(scope="session")
def mysql_server() -> Iterator[str]:
    with serve(catalogue.mariadb()):
        yield MYSQL_URL


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh set of tables on each database in turn."""
    yield from _database(request, request.param, tmp_path)


def _database(request: pytest.FixtureRequest, kind: str, tmp_path: Path) -> Iterator[Database]:
    prefix = new_prefix()
    if kind == "sqlite":
        yield Database(kind, f"sqlite:///{tmp_path / 'triggers.db'}", prefix)
        return
    url = request.getfixturevalue("postgresql_server" if kind == "postgresql" else "mysql_server")
    try:
        yield Database(kind, url, prefix)
    finally:
        _drop(url, prefix)


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    """A fresh set of tables on each database with a server in turn."""
    yield from _database(request, request.param, tmp_path)


@pytest.fixture
def sqlite_file(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    yield from _database(request, "sqlite", tmp_path)


@pytest.fixture
def postgresql(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    yield from _database(request, "postgresql", tmp_path)


@pytest.fixture
def mariadb(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    yield from _database(request, "mariadb", tmp_path)
