"""Record limits the database imposes: MariaDB/MySQL's ``max_allowed_packet``.

MariaDB and MySQL refuse a statement longer than the server's
``max_allowed_packet`` (16 MiB by default) by closing the connection: the
caller sees "MySQL server has gone away", which looks like an outage, and the
pool's connection is lost. The drivers send a record as escaped text inside
the statement, where each quote and backslash takes two bytes, so a record
of canonical JSON is safe when twice its size, plus the statement around it,
fits in the packet. The limit is read once per engine and declared in the
backend's capabilities (``max_record_bytes``): the base class then refuses a
larger record with :class:`~triggers.errors.SessionLimitError` before anything
is sent, and the conformance suite probes it.

SQLite and PostgreSQL take records of any practical size (1 GB), so they
declare none.
"""

from __future__ import annotations

import threading
import weakref

from sqlalchemy import Engine, text

__all__ = ["STATEMENT_ALLOWANCE", "record_limit"]

STATEMENT_ALLOWANCE = 64 * 1024
"""Bytes of a packet kept for the statement around a record (names, keys, SQL)."""

_limits: weakref.WeakKeyDictionary[Engine, int | None] = weakref.WeakKeyDictionary()
_limits_mutex = threading.Lock()


def record_limit(engine: Engine) -> int | None:
    """Largest record (canonical JSON bytes) one statement to ``engine``'s database may carry."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        return None
    with _limits_mutex:
        if engine in _limits:
            return _limits[engine]
    with engine.connect() as connection:
        server = int(connection.execute(text("SELECT @@max_allowed_packet")).scalar_one())
        client = getattr(connection.connection.dbapi_connection, "max_allowed_packet", None)
    packet = min(server, client) if isinstance(client, int) else server
    limit = max((packet - STATEMENT_ALLOWANCE) // 2, 0)
    with _limits_mutex:
        _limits[engine] = limit
    return limit
