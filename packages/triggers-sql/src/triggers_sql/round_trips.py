"""What counts as a round trip to the database, from SQLAlchemy's events.

A round trip is each statement executed, on the engine and on its companion
statement engine (:func:`.engines.statement_engine`), plus what the driver
sends by itself around a transaction of the main engine: ``BEGIN`` (psycopg
sends it; PyMySQL and sqlite3 do not), ``COMMIT``, ``ROLLBACK``, and on
MySQL/MariaDB the ``ROLLBACK`` PyMySQL sends when a connection goes back to
the pool (psycopg skips it on an idle connection). Autocommit connections
send none of those, nor do SQLite's single-statement connections, whose
begin and rollback events send nothing.

The backend reports these on its spans (``triggers.round_trips``, see
:func:`triggers.observability.count_round_trip`); the benchmarks count them
with the same definition.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import Engine, event

from triggers import observability
from triggers_sql.engines import statement_engine

__all__ = ["OnRoundTrip", "count_on_spans", "listen"]

OnRoundTrip = Callable[[str | None, Any], None]
"""Called once per round trip: ``(statement, parameters)`` for a statement,
``(None, None)`` for what the driver sends by itself."""


def listen(engine: Engine, on_round_trip: OnRoundTrip) -> Callable[[], None]:
    """Call ``on_round_trip`` for each round trip to ``engine``'s database; returns
    the function that stops listening."""
    statements = statement_engine(engine)
    dialect = engine.dialect.name
    begin_is_round_trip = dialect == "postgresql"
    reset_is_round_trip = dialect in ("mysql", "mariadb")

    def on_execute(
        conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool
    ) -> None:
        on_round_trip(statement, parameters)

    def on_transaction_end(conn: Any) -> None:
        if not conn.get_execution_options().get("triggers_single_statement", False):
            on_round_trip(None, None)

    def on_begin(conn: Any) -> None:
        if begin_is_round_trip:
            on_round_trip(None, None)

    def on_reset(*args: Any) -> None:
        if reset_is_round_trip:
            on_round_trip(None, None)

    listeners: list[tuple[Any, str, Callable[..., None]]] = [
        (engine, "before_cursor_execute", on_execute),
        (engine, "commit", on_transaction_end),
        (engine, "rollback", on_transaction_end),
        (engine, "begin", on_begin),
        (engine.pool, "reset", on_reset),
    ]
    if statements is not engine:
        listeners.append((statements, "before_cursor_execute", on_execute))
    for target, name, listener in listeners:
        event.listen(target, name, listener)

    def stop() -> None:
        for target, name, listener in listeners:
            event.remove(target, name, listener)

    return stop


_counted: weakref.WeakSet[Engine] = weakref.WeakSet()
_counted_mutex = threading.Lock()


def count_on_spans(engine: Engine) -> None:
    """Report ``engine``'s round trips on the spans around them (once per engine)."""
    if engine in _counted:
        return
    with _counted_mutex:
        if engine not in _counted:
            listen(engine, _count)
            _counted.add(engine)


def _count(statement: str | None, parameters: Any) -> None:
    observability.count_round_trip()
