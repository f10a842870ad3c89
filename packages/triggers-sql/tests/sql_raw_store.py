"""Raw access to the triggers-sql tables of one table prefix, for tests that damage stored data.

Used by this package's conformance tests (the suite's ``raw_store`` hook) and
by the reliability suite's corruption scenario, which imports it from here:
the knowledge of the backend's stored layout stays next to the backend.
"""

from __future__ import annotations

from typing import Any

from triggers_conformance.damage import GARBAGE

__all__ = ["SQLRawStore"]


class SQLRawStore:
    """The triggers-sql tables of one table prefix.

    ``garbage`` and ``truncated`` damage the record of every stored task
    instance; ``foreign_version`` writes a newer schema version into the
    version table, as a newer release of the library (or any other program)
    would after migrating.
    """

    schema_versions = True
    """``foreign_version`` is a newer schema version: a ``SchemaError`` is expected."""

    def __init__(self, options: dict[str, Any]) -> None:
        from triggers_sql import engines, schema

        self.engine = engines.engine_for(options["url"])
        self.tables = schema.tables(options["table_prefix"], None)

    def snapshot(self, uid: str) -> Any:
        from sqlalchemy import select

        from triggers_sql.schema import name_key

        t, key = self.tables, name_key(uid)
        with self.engine.connect() as connection:
            return {
                "version": list(connection.scalars(select(t.version.c.version))),
                "session": [tuple(row) for row in connection.execute(
                    select(t.sessions.c.uid, t.sessions.c.version).where(t.sessions.c.uid_key == key))],
                **{
                    table.name: sorted(tuple(row) for row in connection.execute(
                        select(table).where(table.c.uid_key == key)))
                    for table in (t.configs, t.instances, t.metas)
                },
            }

    def damage(self, uid: str, kind: str) -> None:
        from sqlalchemy import select, update

        from triggers_sql.schema import SCHEMA_VERSION, name_key

        t, key = self.tables, name_key(uid)
        with self.engine.begin() as connection:
            if kind == "foreign_version":
                connection.execute(update(t.version).values(version=SCHEMA_VERSION + 1))
                return
            rows = connection.execute(
                select(t.instances.c.name_key, t.instances.c.record).where(t.instances.c.uid_key == key)
            ).all()
            assert rows, f"session {uid!r} has no stored instances to damage"
            for name, record in rows:
                damaged = GARBAGE if kind == "garbage" else record[: len(record) // 2]
                connection.execute(
                    update(t.instances)
                    .where(t.instances.c.uid_key == key, t.instances.c.name_key == name)
                    .values(record=damaged)
                )
