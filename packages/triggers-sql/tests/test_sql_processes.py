"""Several processes firing into one session on one SQLite file, and on PostgreSQL."""

from __future__ import annotations

import multiprocessing

import pytest
from sql_databases import Database

from triggers.manager import TriggerManager
from triggers_sql import SQLStorageBackend

WORKERS = 4
FIRES = 15
NOOP = "triggers_conformance.tasks.noop"


def _worker(options: dict[str, str], worker: int) -> None:
    for n in range(FIRES):
        storage = SQLStorageBackend("shared", **options, lock_timeout=120)
        TriggerManager(storage).fire("page", {"worker": worker, "n": n})
        storage.close()


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_no_fire_is_lost_when_processes_share_a_session(
    request: pytest.FixtureRequest, kind: str
) -> None:
    database: Database = request.getfixturevalue(
        "sqlite_file" if kind == "sqlite" else "postgresql"
    )
    manager = TriggerManager(SQLStorageBackend("shared", **database.options))
    manager.update_configuration({"t_page": {"run": NOOP, "after": ["start"], "andEvery": "page"}})
    manager.fire("start")

    fork = multiprocessing.get_context("fork")
    workers = [fork.Process(target=_worker, args=(database.options, w)) for w in range(WORKERS)]
    for process in workers:
        process.start()
    for process in workers:
        process.join(timeout=300)
        assert process.exitcode == 0

    storage = SQLStorageBackend("shared", **database.options)
    pages = [i.kwargs["page"] for i in storage.instances_of_task("t_page") if "page" in i.kwargs]
    fired = sorted((p["worker"], p["n"]) for p in pages)
    assert fired == sorted((w, n) for w in range(WORKERS) for n in range(FIRES))
