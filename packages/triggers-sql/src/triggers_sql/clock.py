"""The database's clock, as seconds since the epoch, inside a statement.

Leases are judged on the store's clock, not the caller's: a lease's expiry is
written as ``store_now() + ttl`` and a lease counts as expired when
``lease_expires <= store_now()``, both evaluated by the database while it runs
the statement. A process whose clock runs ahead (broken NTP, a VM resumed
from a snapshot) therefore cannot take a live lease, and one whose clock runs
behind cannot write a lease that others take at once. Only the length of a
lease is the caller's: its own clock measures how long it may keep working
(``Lease.expired``), and a clock's *rate* is far more reliable than its
*setting*.

SQLite has no server: its clock is the machine's, which every process using
the database file shares (SQLite files are not shared across machines).
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Double
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.functions import FunctionElement

__all__ = ["store_now"]


class store_now(FunctionElement[float]):
    """``now()`` of the database, in seconds since the epoch (with fractions)."""

    type = Double()
    inherit_cache = True


@compiles(store_now, "postgresql")
def _postgresql(element: store_now, compiler: SQLCompiler, **kw: Any) -> str:
    # clock_timestamp(), not now(): now() is the start of the transaction.
    return "EXTRACT(EPOCH FROM clock_timestamp())"


@compiles(store_now, "mysql")
@compiles(store_now, "mariadb")
def _mysql(element: store_now, compiler: SQLCompiler, **kw: Any) -> str:
    # The time the statement started, with microseconds (replication-safe,
    # unlike SYSDATE()).
    return "UNIX_TIMESTAMP(NOW(6))"


@compiles(store_now, "sqlite")
def _sqlite(element: store_now, compiler: SQLCompiler, **kw: Any) -> str:
    return "((julianday('now') - 2440587.5) * 86400.0)"


@compiles(store_now)
def _other(element: store_now, compiler: SQLCompiler, **kw: Any) -> str:
    raise NotImplementedError(
        f"triggers-sql does not know the clock function of the {compiler.dialect.name!r} "
        "database; supported: SQLite, PostgreSQL, MariaDB/MySQL"
    )
