"""What the sql backend does at the database: tables, schema versions, rows written, errors."""

from __future__ import annotations

import pytest
from sql_counting import traffic
from sql_databases import Database, new_prefix
from sqlalchemy import create_engine, update

from triggers.errors import ConfigurationError, SchemaError, SessionLimitError, StorageError
from triggers.manager import TriggerManager
from triggers.types import InstanceStatus
from triggers_sql import SQLStorageBackend
from triggers_sql.schema import tables

NOOP = "triggers_conformance.tasks.noop"
HISTORY = 10_000


def test_tables_are_created_on_first_use_and_described_by_check_schema(database: Database) -> None:
    with pytest.raises(SchemaError, match="no triggers-sql tables"):
        SQLStorageBackend.check_schema(**database.options)
    storage = SQLStorageBackend("s", **database.options)
    with storage.acquire_lock():
        storage.metadata["k"] = "v"
        storage.save()
    lines = SQLStorageBackend.check_schema(**database.options)
    assert len(lines) == 5 and all("ok (schema version 1)" in line for line in lines)
    assert list(SQLStorageBackend.session_uids(**database.options)) == ["s"]


def test_teams_managing_ddl_create_the_tables_explicitly(sqlite_file: Database) -> None:
    with pytest.raises(SchemaError, match="triggers schema create"):
        SQLStorageBackend("s", **sqlite_file.options, create_tables=False)
    created = SQLStorageBackend.create_schema(**sqlite_file.options)
    assert all("created" in line for line in created)
    assert all("exists" in line for line in SQLStorageBackend.create_schema(**sqlite_file.options))
    SQLStorageBackend("s", **sqlite_file.options, create_tables=False).close()


@pytest.mark.parametrize(("stored", "advice"), [(0, "migrate them"), (2, "upgrade triggers-sql")])
def test_tables_of_another_schema_version_are_refused(
    sqlite_file: Database, stored: int, advice: str
) -> None:
    SQLStorageBackend.create_schema(**sqlite_file.options)
    engine = create_engine(sqlite_file.url)
    with engine.begin() as connection:
        connection.execute(
            update(tables(sqlite_file.table_prefix, None).version).values(version=stored)
        )
    engine.dispose()
    with pytest.raises(SchemaError, match=advice):
        SQLStorageBackend.check_schema(**sqlite_file.options)
    with pytest.raises(SchemaError, match=f"schema version {stored}"):
        SQLStorageBackend.create_schema(**sqlite_file.options)


def test_table_prefix_separates_applications(sqlite_file: Database) -> None:
    other = {"url": sqlite_file.url, "table_prefix": new_prefix()}
    for options, value in ((sqlite_file.options, 1), (other, 2)):
        storage = SQLStorageBackend("same-uid", **options)
        with storage.acquire_lock():
            storage.metadata["app"] = value
            storage.save()
    assert SQLStorageBackend("same-uid", **sqlite_file.options).metadata["app"] == 1
    assert SQLStorageBackend("same-uid", **other).metadata["app"] == 2


def _session_with_history(options: dict[str, str], uid: str, history: int) -> None:
    storage = SQLStorageBackend(uid, **options)
    manager = TriggerManager(storage)
    manager.update_configuration(
        {
            "t_history": {"run": NOOP, "after": ["start"]},
            "t_a": {"run": NOOP, "after": ["start", "go"]},
            "t_b": {"run": NOOP, "after": ["start", "go"]},
        }
    )
    manager.fire("start")
    with storage.acquire_lock():
        for n in range(history):
            storage.create_instance(
                "t_history", status=InstanceStatus.FINISHED, kwargs={"start": {"n": n}}
            )
        storage.save()
    storage.close()


def _fire_traffic(options: dict[str, str], uid: str) -> tuple[int, dict[str, int], int]:
    storage = SQLStorageBackend(uid, **options)
    with traffic(storage.engine) as seen:
        TriggerManager(storage).fire("go")
    rows = {table: seen.table(table) for table in ("sessions", "configs", "instances", "metadata")}
    return seen.saves, rows, len(seen.statements)


@pytest.mark.parametrize("kind", ["sqlite", "postgresql"])
def test_a_fire_in_a_big_session_writes_only_the_rows_it_changed(
    request: pytest.FixtureRequest, kind: str
) -> None:
    database: Database = request.getfixturevalue(
        "sqlite_file" if kind == "sqlite" else "postgresql"
    )
    _session_with_history(database.options, "small", 10)
    _session_with_history(database.options, "big", HISTORY)
    small = _fire_traffic(database.options, "small")
    big = _fire_traffic(database.options, "big")
    # The same statements and rows, whatever the history: nothing is per instance.
    assert big == small
    saves, rows, _ = big
    # "go" touches t_a#0 and t_b#0; every save rewrites at most those two.
    assert saves >= 1 and rows["instances"] <= 2 * saves and rows["configs"] == 0
    whole = SQLStorageBackend("big", **database.options)
    with traffic(whole.engine) as seen:
        assert len(whole.instances) == HISTORY + 3
    assert seen.selects == 1  # the whole session in one statement
    assert {whole[f"t_{t}#0"].status for t in "ab"} == {InstanceStatus.FINISHED}


def test_an_unreachable_server_is_a_clear_storage_error() -> None:
    url = "postgresql+psycopg://someone:secret@127.0.0.1:9/nowhere?connect_timeout=2"
    with pytest.raises(
        StorageError, match=r"could not prepare the tables on .*\*\*\*@127.0.0.1:9"
    ) as info:
        SQLStorageBackend("s", url=url)
    assert "secret" not in str(info.value)
    assert info.value.__cause__ is not None


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of url= .* or engine="),
        ({"url": "sqlite://", "engine": object()}, "exactly one of"),
        ({"engine": "sqlite://"}, "engine= must be a sqlalchemy Engine"),
        ({"url": "nosuchdb://x"}, "url='nosuchdb://x' is not usable"),
        ({"url": "sqlite://", "table_prefix": "drop table;"}, "table_prefix='drop table;'"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        SQLStorageBackend("s", **options)  # type: ignore[arg-type]


def test_an_in_memory_database_serves_one_process() -> None:
    options = {"url": "sqlite://", "table_prefix": new_prefix()}
    storage = SQLStorageBackend("m", **options)
    with storage.acquire_lock():
        storage.metadata["x"] = [1, 2]
        storage.save()
    assert SQLStorageBackend("m", **options).metadata["x"] == [1, 2]


def test_an_existing_engine_can_be_passed(sqlite_file: Database) -> None:
    engine = create_engine(sqlite_file.url)
    storage = SQLStorageBackend("e", engine=engine, table_prefix=sqlite_file.table_prefix)
    with storage.acquire_lock():
        storage.metadata["k"] = 1
        storage.save()
    assert SQLStorageBackend("e", **sqlite_file.options).metadata["k"] == 1
    engine.dispose()


def test_mariadb_refuses_a_record_over_max_allowed_packet_before_sending_it(
    mariadb: Database,
) -> None:
    """17 MiB against the default 16 MiB packet: refused by name, not "server has gone away"."""
    storage = SQLStorageBackend("big", **mariadb.options)
    limit = storage.capabilities.max_record_bytes
    with create_engine(mariadb.url).connect() as connection:
        packet = connection.exec_driver_sql("SELECT @@max_allowed_packet").scalar_one()
    assert limit is not None and limit < packet // 2
    assert SQLStorageBackend.capabilities.max_record_bytes is None  # the class stays general
    with storage.acquire_lock():
        storage.update_configuration({"t_a": {"run": NOOP, "after": ["x"]}})
        storage.metadata["small"] = 1
        storage.save()
    huge = "p" * (packet + 1024 * 1024)
    with storage.acquire_lock():
        storage.create_instance("t_a", metadata={"pad": huge})
        with pytest.raises(SessionLimitError, match=r"'t_a#0' takes \d+ bytes.*Nothing was written"):
            storage.save()
    with storage.acquire_lock():
        storage.metadata["huge"] = huge
        with pytest.raises(SessionLimitError, match=r"metadata 'huge' takes \d+ bytes"):
            storage.save()
    # Nothing was sent: the pool's connections still work, and the session is as it was.
    with storage.acquire_lock():
        storage.metadata["small"] = 2
        storage.save()
    fresh = SQLStorageBackend("big", **mariadb.options)
    assert fresh.metadata == {"small": 2} and len(fresh.instances) == 0
