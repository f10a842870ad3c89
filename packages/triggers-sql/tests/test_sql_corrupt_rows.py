"""A row that is not valid JSON is a CorruptSessionError naming the session and the row.

Found by the reliability suite: such a row used to surface as a generic
StorageError carrying the JSON decoder's message, without saying which
record was damaged.
"""

from __future__ import annotations

import pytest
from sql_databases import Database
from sqlalchemy import update

from triggers.errors import CorruptSessionError
from triggers_sql import SQLStorageBackend
from triggers_sql.schema import name_key, tables


@pytest.mark.parametrize("damage", ["not json {", '{"status": "unsta'])
def test_a_row_that_is_not_json_is_a_corrupt_session_naming_uid_and_row(
    sqlite_file: Database, damage: str
) -> None:
    storage = SQLStorageBackend("victim", **sqlite_file.options)
    with storage.acquire_lock():
        storage.update_configuration({"t_a": {"after": ["x"], "run": "json.dumps"}})
        storage.create_instance("t_a")
        storage.save()
    instances = tables(sqlite_file.table_prefix, None).instances
    with storage.engine.begin() as connection:
        connection.execute(update(instances).where(instances.c.uid_key == name_key("victim"))
                           .values(record=damage))
    fresh = SQLStorageBackend("victim", **sqlite_file.options)
    with pytest.raises(CorruptSessionError, match=r"session 'victim': the stored task instance \"t_a#0\""):
        _ = fresh.metadata
    with storage.engine.connect() as connection:
        assert connection.scalars(instances.select().with_only_columns(instances.c.record)).all() == [damage]
