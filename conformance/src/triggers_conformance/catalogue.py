"""The servers this project's tests, benchmarks and reliability suite use, described once.

Each function returns a :class:`~triggers_conformance.servers.Server` (hand it to
:func:`~triggers_conformance.servers.serve`) for one kind of server, at the
address the environment names or at its usual local one: PostgreSQL and
MariaDB (run by the machine, never started by the tests), a MongoDB-protocol
server (SecantusDB, started in memory when nothing answers there) and a
DynamoDB-API server (moto, one request at a time, see
:data:`MOTO_SERIAL_SCRIPT`). The probes are real protocol round trips: a
port can accept connections before the server serves requests.

The drivers (SQLAlchemy, pymongo) are imported when a probe runs, so that a
package's tests need only the driver of the server they use.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

from triggers_conformance.servers import Server, port_answers

__all__ = [
    "MONGO_URL",
    "MOTO_SERIAL_SCRIPT",
    "MYSQL_URL",
    "POSTGRESQL_URL",
    "SECANTUS_PORT",
    "mariadb",
    "mongo",
    "mongo_answers",
    "moto",
    "postgresql",
    "sql_answers",
]

POSTGRESQL_URL = os.environ.get(
    "TRIGGERS_SQL_POSTGRESQL_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
"""The PostgreSQL the tests use (``TRIGGERS_SQL_POSTGRESQL_URL`` overrides it)."""

MYSQL_URL = os.environ.get("TRIGGERS_SQL_MYSQL_URL", "mysql+pymysql://root@127.0.0.1:3306/test")
"""The MariaDB (or MySQL) the tests use (``TRIGGERS_SQL_MYSQL_URL`` overrides it)."""

SECANTUS_PORT = 27018
"""Where the tests start SecantusDB when ``TRIGGERS_MONGO_URL`` names no other server."""

MONGO_URL = os.environ.get("TRIGGERS_MONGO_URL", f"mongodb://127.0.0.1:{SECANTUS_PORT}")
"""The MongoDB-protocol server the tests use."""

MOTO_SERIAL_SCRIPT = (
    Path(__file__).resolve().parents[3]
    / "packages" / "triggers-dynamodb" / "tests" / "dynamodb_moto_server.py"
)
"""moto's DynamoDB server answering one request at a time, as DynamoDB applies
each atomically (moto's own server checks conditions without a lock). Present
in this repository's checkout, not in an installed ``triggers-conformance``."""


def sql_answers(url: str) -> bool:
    """True when the database at ``url`` runs ``SELECT 1`` (2 s to connect)."""
    from sqlalchemy import create_engine, text

    engine = create_engine(url, connect_args={"connect_timeout": 2})
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT 1"))
        return True
    finally:
        engine.dispose()


def _sql(name: str, url: str, variable: str) -> Server:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    return Server(name, parsed.host or "127.0.0.1", parsed.port or 0,
                  ready=lambda: sql_answers(url), install=f"set {variable}")


def postgresql(url: str = POSTGRESQL_URL) -> Server:
    """The machine's PostgreSQL (the tests never start one)."""
    return _sql("PostgreSQL", url, "TRIGGERS_SQL_POSTGRESQL_URL")


def mariadb(url: str = MYSQL_URL) -> Server:
    """The machine's MariaDB (the tests never start one)."""
    return _sql("MariaDB", url, "TRIGGERS_SQL_MYSQL_URL")


def mongo_answers(url: str) -> bool:
    """True when the server at ``url`` answers ``ping`` (1 s to find it)."""
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(url, serverSelectionTimeoutMS=1000)
    try:
        client.admin.command("ping")
        return True
    finally:
        client.close()


def mongo(url: str = MONGO_URL, *, secantus_port: int = SECANTUS_PORT) -> Server:
    """The MongoDB-protocol server at ``url``: SecantusDB in memory, started on
    ``secantus_port`` (``url``'s port) when nothing answers there, unless
    ``TRIGGERS_MONGO_URL`` names another server (which is then never started)."""
    from pymongo.uri_parser import parse_uri

    host, port = parse_uri(url)["nodelist"][0]
    command = None
    if "TRIGGERS_MONGO_URL" not in os.environ:
        command = [
            "secantusd-py", "--host", "127.0.0.1", "--port", str(secantus_port),
            "--storage-path", ":memory:", "--log-level", "WARNING",
        ]
    return Server(
        name="MongoDB (SecantusDB)" if command else "MongoDB",
        host=host,
        port=port,
        command=command,
        ready=lambda: mongo_answers(url),
        install="pip install --pre secantusdb, or set TRIGGERS_MONGO_URL",
    )


def moto(port: int) -> Server:
    """moto's DynamoDB API on ``127.0.0.1:port``, one request at a time."""
    return Server(
        "moto", "127.0.0.1", port,
        command=[sys.executable, str(MOTO_SERIAL_SCRIPT), str(port)],
        ready=lambda: port_answers("127.0.0.1", port),
        install="moto[server] comes with the dev environment",
    )
