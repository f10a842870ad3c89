"""The conditional write of a save, as each database does it (see ``triggers_sql.writes``).

What the conformance suite cannot see from outside: how many round trips a
save costs on each database (counted exactly, from SQLAlchemy's events), that
a refused write leaves none of its rows behind (PostgreSQL's one statement,
MariaDB's compound statement, SQLite's transaction), and that two processes
creating one session at the same moment cannot both win.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest
from sql_counting import round_trips, traffic
from sql_databases import Database

from triggers.errors import ContentionError, StaleSessionError
from triggers.manager import TriggerManager
from triggers.runners import TaskRunner
from triggers.storage import SessionChanges
from triggers_conformance.spans import recorded_spans
from triggers_conformance.spans import round_trips as spans_round_trips
from triggers_sql import SQLStorageBackend

NOOP = "triggers_conformance.tasks.noop"

QUEUED_FIRE = {"sqlite": 6, "postgresql": 2, "mariadb": 2}
"""Round trips of a fire whose task is queued: the load, and the save

* PostgreSQL, MariaDB: one statement;
* SQLite: ``BEGIN IMMEDIATE``, the fence ``UPDATE``, the upsert of the new
  instance, the upsert of the metadata (the trigger's kwargs, the instance
  counter, the write's token), ``COMMIT``.
"""

LOCK_CYCLE = {"sqlite": 7, "postgresql": 4, "mariadb": 4}
"""Round trips of ``acquire_lock()``, a change of metadata, ``save()``: the
take, the load, the save (SQLite: four, no instance to write) and the release."""


class _Queue(TaskRunner):
    """Queues what it is given (a task queue's producer side): runs nothing."""

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        pass


def _queueing(database: Database, uid: str) -> tuple[SQLStorageBackend, TriggerManager]:
    """A session whose ``job`` fires queue one instance each, warmed up by one such fire."""
    storage = SQLStorageBackend(uid, **database.options)
    manager = TriggerManager(storage, runners={"queue": _Queue()})
    manager.update_configuration(
        {"t_job": {"run": NOOP, "after": ["start"], "andEvery": "job", "using": "queue"}}
    )
    manager.fire("start")
    manager.fire("job", {"n": "warm-up"})
    return storage, manager


def test_round_trips_of_a_save(database: Database) -> None:
    storage, manager = _queueing(database, "s")
    with round_trips(storage.engine) as fire:
        manager.fire("job", {"n": 1})
    assert fire.count == QUEUED_FIRE[database.name]
    with round_trips(storage.engine) as cycle, storage.acquire_lock():
        storage.metadata["k"] = 1
        storage.save()
    assert cycle.count == LOCK_CYCLE[database.name]


def test_spans_report_the_round_trips_of_loads_and_saves(database: Database) -> None:
    storage, manager = _queueing(database, "traced")
    with recorded_spans() as spans, round_trips(storage.engine) as fire:
        manager.fire("job", {"n": 1})
    assert fire.count == QUEUED_FIRE[database.name]
    reported = (spans_round_trips(spans, "triggers.load"), spans_round_trips(spans, "triggers.save"))
    assert reported == ([1], [fire.count - 1]), reported


def _rows(database: Database, uid: str) -> dict[str, Any]:
    fresh = SQLStorageBackend(uid, **database.options)
    return {"instances": sorted(fresh.instances), "metadata": fresh.metadata}


def _configured(database: Database, uid: str) -> SQLStorageBackend:
    storage = SQLStorageBackend(uid, **database.options)
    storage.transact(lambda: storage.update_configuration({"t": {"after": ["x"], "run": NOOP}}))
    return storage


def _half_of_a_fire(storage: SQLStorageBackend) -> None:
    storage.create_instance("t")
    storage.metadata["mine"] = True


def test_an_optimistic_write_refused_by_a_lease_writes_none_of_its_rows(
    database: Database,
) -> None:
    writer = _configured(database, "s")
    holder = SQLStorageBackend("s", **database.options)
    before = _rows(database, "s")
    with holder.acquire_lock(), traffic(writer.engine) as seen, \
            pytest.raises(ContentionError) as refused:
        writer.transact(lambda: _half_of_a_fire(writer), timeout=0)
    # Sent and refused; the one-statement saves carried the instance's row along.
    assert seen.saves == 1 and seen.table("instances") == (database.name != "sqlite")
    assert "is locked by another holder" in str(refused.value)
    assert "is locked by a lease holder" in str(refused.value.__cause__)
    assert _rows(database, "s") == before


def test_a_write_refused_because_the_version_moved_writes_none_of_its_rows(
    database: Database,
) -> None:
    writer = _configured(database, "s")
    other = SQLStorageBackend("s", **database.options)
    refusals: list[StaleSessionError] = []
    save_changes = writer._save_changes

    def first_overtaken(changes: SessionChanges) -> None:
        if not refusals:
            other.transact(lambda: other.metadata.update(other=1))
        try:
            save_changes(changes)
        except StaleSessionError as refusal:
            refusals.append(refusal)
            assert _rows(database, "s") == {"instances": [], "metadata": {"other": 1}}
            raise

    writer._save_changes = first_overtaken  # type: ignore[method-assign]
    writer.transact(lambda: _half_of_a_fire(writer))  # refused once, then applied again
    assert len(refusals) == 1
    assert "the stored version is 2, this writer loaded 1" in str(refusals[0])
    after = _rows(database, "s")
    assert after["instances"] == ["t#0"]
    assert after["metadata"] == {"other": 1, "mine": True, "instanceCounts": {"t": 1}}


def _race(writers: list[SQLStorageBackend], change: Callable[[SQLStorageBackend], None]) -> list[str]:
    """Each writer loads, all wait for each other, then all write at once; their first outcomes."""
    barrier = threading.Barrier(len(writers))
    outcomes: list[str] = []

    def run(writer: SQLStorageBackend) -> None:
        save_changes = writer._save_changes
        first = True

        def at_once(changes: SessionChanges) -> None:
            nonlocal first
            if not first:
                save_changes(changes)
                return
            first = False
            barrier.wait(timeout=30)
            try:
                save_changes(changes)
            except StaleSessionError:
                outcomes.append("refused")
                raise
            outcomes.append("saved")

        writer._save_changes = at_once  # type: ignore[method-assign]
        writer.transact(lambda: change(writer), timeout=30)

    threads = [threading.Thread(target=run, args=(writer,)) for writer in writers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    return sorted(outcomes)


@pytest.mark.parametrize("round_number", range(3))
def test_of_two_first_writers_of_a_new_session_exactly_one_wins(
    database: Database, round_number: int
) -> None:
    uid = f"new-{round_number}"
    writers = [SQLStorageBackend(uid, **database.options) for _ in range(2)]

    def count(writer: SQLStorageBackend) -> None:
        writer.metadata["n"] = writer.metadata.get("n", 0) + 1

    assert _race(writers, count) == ["refused", "saved"]
    # The one refused applied its change again, on the winner's state.
    assert SQLStorageBackend(uid, **database.options).metadata == {"n": 2}


def test_a_new_session_whose_row_holds_only_a_lease_is_created_once_the_lease_ends(
    database: Database,
) -> None:
    """``acquire_lock()`` on a new session makes a row with no version, only a lease."""
    holder = SQLStorageBackend("s", **database.options)
    writer = SQLStorageBackend("s", **database.options)
    with holder.acquire_lock(), \
            pytest.raises(ContentionError, match="is locked by another holder"):
        writer.transact(lambda: writer.metadata.update(w=1), timeout=0)
    writer.transact(lambda: writer.metadata.update(w=1))
    assert SQLStorageBackend("s", **database.options).metadata == {"w": 1}
