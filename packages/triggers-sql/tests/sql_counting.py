"""Counting what the sql backend sends to the database, with SQLAlchemy events."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, event

from triggers_sql import round_trips as triggers_round_trips
from triggers_sql.engines import statement_engine

_TARGET = re.compile(r"^\s*(INSERT INTO|UPDATE|DELETE FROM|SELECT)\s+(\S+)?", re.IGNORECASE)

_ONE_STATEMENT_SAVE = re.compile(r"^\s*(WITH fence AS|BEGIN NOT ATOMIC)")
"""A save in one statement (PostgreSQL, MariaDB: see triggers_sql.writes)."""

_RECORD_PARAMETER = re.compile(r"^(?:p_([cim])_|([cim])\d+_)name_key$")
"""The parameter naming each record of a one-statement save: ``p_i_name_key`` (an
array, PostgreSQL) or ``i7_name_key`` (one per record, MariaDB)."""

_TABLES = {"c": "configs", "i": "instances", "m": "metadata"}


@dataclass
class Traffic:
    """Statements sent, and rows written per table (executemany counts each row)."""

    statements: list[str] = field(default_factory=list)
    rows_written: Counter[str] = field(default_factory=Counter)

    def table(self, suffix: str) -> int:
        return sum(n for name, n in self.rows_written.items() if name.endswith(suffix))

    @property
    def saves(self) -> int:
        """Fenced saves: each moves the session row to a new version, once."""
        return sum(1 for s in self.statements if re.search(r"sessions\W* SET version ?=", s))

    @property
    def selects(self) -> int:
        return sum(1 for s in self.statements if s.lstrip().upper().startswith("SELECT"))


@contextmanager
def every_statement(engine: Engine, listener: Callable[..., None]) -> Iterator[None]:
    """Call ``listener`` before each statement the backend sends for ``engine``.

    Single statements run on a companion engine on PostgreSQL and MariaDB
    (``statement_engine``), so both engines are listened to.
    """
    watched = {engine, statement_engine(engine)}
    for target in watched:
        event.listen(target, "before_cursor_execute", listener)
    try:
        yield
    finally:
        for target in watched:
            event.remove(target, "before_cursor_execute", listener)


@contextmanager
def traffic(engine: Engine) -> Iterator[Traffic]:
    seen = Traffic()

    def before(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
    ) -> None:
        if statement.strip().upper() in ("BEGIN", "BEGIN IMMEDIATE", "COMMIT", "ROLLBACK"):
            return
        seen.statements.append(statement)
        if _ONE_STATEMENT_SAVE.match(statement):
            _count_records(seen, parameters)
            return
        match = _TARGET.match(statement)
        if match and match.group(1).upper() != "SELECT":
            rows = len(parameters) if executemany else 1
            seen.rows_written[match.group(2).strip('"`')] += rows

    with every_statement(engine, before):
        yield seen


def _count_records(seen: Traffic, parameters: dict[str, Any]) -> None:
    """Rows a one-statement save was given to write (if its fence matches), per table."""
    seen.rows_written["sessions"] += 1
    for name, value in parameters.items():
        match = _RECORD_PARAMETER.match(name)
        if match:
            kind = match.group(1) or match.group(2)
            seen.rows_written[_TABLES[kind]] += len(value) if isinstance(value, list) else 1


@dataclass
class RoundTrips:
    """Round trips to the database: statements, and what the driver sends around them."""

    count: int = 0


@contextmanager
def round_trips(engine: Engine) -> Iterator[RoundTrips]:
    """Count the round trips the backend makes to ``engine``'s database, exactly, as
    :mod:`triggers_sql.round_trips` defines them (the benchmarks' meter and the
    backend's spans use the same definition)."""
    seen = RoundTrips()

    def add(statement: str | None, parameters: Any) -> None:
        seen.count += 1

    stop = triggers_round_trips.listen(engine, add)
    try:
        yield seen
    finally:
        stop()
