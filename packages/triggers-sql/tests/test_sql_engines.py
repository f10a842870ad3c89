"""Engines the application passes in: bookkeeping by the engine object, and fork()."""

from __future__ import annotations

import gc
from pathlib import Path

from sql_databases import Database
from sqlalchemy import create_engine

from triggers.manager import TriggerManager
from triggers_conformance.processes import start_child
from triggers_sql.backend import SQLStorageBackend


def test_every_new_engine_gets_its_tables_even_when_ids_are_reused(tmp_path: Path) -> None:
    """One engine per tenant (or per test), made and dropped over time.

    CPython hands the id of a collected engine to the next one; tables
    remembered as prepared by id would never be created for the newcomer.
    """
    ids: set[int] = set()
    reused = 0
    for number in range(200):  # until a few engines were made at an id seen before
        engine = create_engine(f"sqlite:///{tmp_path / f'tenant-{number}.db'}")
        reused += id(engine) in ids
        ids.add(id(engine))
        storage = SQLStorageBackend("session", engine=engine)
        TriggerManager(storage).update_configuration({"t": {"after": ["go"], "run": "builtins.print"}})
        assert list(storage.tasks) == ["t"]
        storage.close()
        engine.dispose()
        del storage, engine
        gc.collect()
        if reused >= 3:
            break
    assert reused >= 3, "no id was reused: the test did not exercise the reuse"


def test_an_engine_passed_in_and_used_before_fork_is_not_shared_with_the_child(server: Database) -> None:
    """``engine=`` objects cannot be re-created per process; their inherited pool is dropped."""
    engine = create_engine(server.url)
    made = {}
    for uid in ("parent", "child"):
        storage = SQLStorageBackend(f"{server.table_prefix}{uid}", engine=engine,
                                    table_prefix=server.table_prefix)
        with storage.acquire_lock():
            storage.metadata["owner"] = uid
            storage.save()
        storage.invalidate_cache()
        made[uid] = storage

    def owners(storage: SQLStorageBackend) -> set[object]:
        seen = set()
        for _ in range(200):
            storage.invalidate_cache()
            seen.add(storage.metadata.get("owner"))
        return seen

    child = start_child(owners, made["child"])
    assert owners(made["parent"]) == {"parent"}
    assert child.result(timeout=60) == {"child"}
    engine.dispose()


def test_an_in_memory_sqlite_database_claims_no_shared_state(tmp_path: Path) -> None:
    """It lives and dies with one process: nothing may rely on it to share sessions."""
    on_disk = {"url": f"sqlite:///{tmp_path / 'shared.db'}"}
    for options in ({"url": "sqlite://"}, {"url": "sqlite:///:memory:"},
                    {"engine": create_engine("sqlite://")}):
        claimed = SQLStorageBackend.capabilities_for(**options)
        assert not claimed.shared_state and not claimed.cross_process_locking, options
        made = SQLStorageBackend("s", **options).capabilities
        assert not made.shared_state and made.optimistic_saves, options
    assert SQLStorageBackend.capabilities_for(**on_disk).shared_state
    assert SQLStorageBackend("s", **on_disk).capabilities.shared_state
