"""The tables, their version, and creating or checking them.

Normalized: a session row (version and lease), and one row per task config,
per task instance and per metadata key, so a save writes only what changed and
a fire reads only the instances that can still change (``active``, indexed).

Every name a user chooses (uid, task and instance names, metadata keys) is
stored twice: as a SHA-256 key (64 ASCII characters) that the primary keys and
indexes use, and as its JSON text for reading back. The hashed key makes every
``str`` work the same on every database: no length limit on indexed columns,
no case-insensitive or PAD SPACE collation (MariaDB's defaults) treating
``"A"``/``"a"`` or ``"a"``/``"a "`` as one name, no Unicode normalization
merging NFC and NFD spellings. The JSON text escapes NUL, which PostgreSQL's
text type refuses.

The schema carries a version number in its own table. A library that expects
another version refuses to touch the tables and says what to do.
"""

from __future__ import annotations

import hashlib
import threading
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Double,
    Engine,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    inspect,
    select,
)
from sqlalchemy.dialects import mysql
from sqlalchemy.exc import DBAPIError

from triggers.errors import SchemaError
from triggers_sql.engines import transaction

__all__ = ["SCHEMA_VERSION", "Tables", "check_schema", "create_schema", "name_key"]

SCHEMA_VERSION = 1
"""The version of the tables this library reads and writes."""

KEY = String(64)
"""A SHA-256 hex digest (see :func:`name_key`)."""

JSON_TEXT = Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")
"""JSON text; MariaDB's TEXT stops at 64 KB, so use LONGTEXT there."""


def name_key(name: str) -> str:
    """The indexed key of a user-chosen name: exact, fixed-length, collation-proof."""
    return hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()


@dataclass(frozen=True)
class Tables:
    """The tables of one ``table_prefix`` in one ``schema`` (a namespace)."""

    metadata: MetaData
    version: Table
    sessions: Table
    configs: Table
    instances: Table
    metas: Table

    @property
    def all(self) -> list[Table]:
        return [self.version, self.sessions, self.configs, self.instances, self.metas]


_tables: dict[tuple[str, str | None], Tables] = {}
_tables_mutex = threading.Lock()


def tables(prefix: str, schema: str | None) -> Tables:
    """The (shared) table definitions for ``prefix`` and ``schema``."""
    with _tables_mutex:
        found = _tables.get((prefix, schema))
        if found is None:
            found = _tables[(prefix, schema)] = _define(prefix, schema)
        return found


def _define(prefix: str, schema: str | None) -> Tables:
    metadata = MetaData(schema=schema)
    version = Table(
        f"{prefix}schema_version",
        metadata,
        Column("version", Integer, primary_key=True, autoincrement=False),
    )
    sessions = Table(
        f"{prefix}sessions",
        metadata,
        Column("uid_key", KEY, primary_key=True),
        Column("uid", JSON_TEXT, nullable=False),
        # NULL until the first save: the row may exist only to hold a lease.
        Column("version", BigInteger, nullable=True),
        Column("lease_token", String(64), nullable=True),
        Column("lease_expires", Double, nullable=True),
    )
    configs = Table(
        f"{prefix}configs",
        metadata,
        Column("uid_key", KEY, primary_key=True),
        Column("name_key", KEY, primary_key=True),
        Column("name", JSON_TEXT, nullable=False),
        Column("record", JSON_TEXT, nullable=False),
    )
    instances = Table(
        f"{prefix}instances",
        metadata,
        Column("uid_key", KEY, primary_key=True),
        Column("name_key", KEY, primary_key=True),
        Column("name", JSON_TEXT, nullable=False),
        Column("record", JSON_TEXT, nullable=False),
        Column("active", Boolean, nullable=False),
    )
    Index(f"{prefix}instances_active", instances.c.uid_key, instances.c.active)
    metas = Table(
        f"{prefix}metadata",
        metadata,
        Column("uid_key", KEY, primary_key=True),
        Column("name_key", KEY, primary_key=True),
        Column("name", JSON_TEXT, nullable=False),
        Column("value", JSON_TEXT, nullable=False),
    )
    return Tables(metadata, version, sessions, configs, instances, metas)


def _stored_version(engine: Engine, t: Tables) -> int | None:
    """The stored schema version; None when no table exists yet."""
    names = set(inspect(engine).get_table_names(schema=t.metadata.schema))
    if t.version.name not in names:
        missing = [table.name for table in t.all if table.name in names]
        if missing:
            raise SchemaError(
                f"tables {', '.join(missing)} exist without {t.version.name}: they were "
                "not created by triggers-sql (or the version table was dropped); use "
                "another table_prefix, or restore the version table"
            )
        return None
    with engine.connect() as connection:
        versions = list(connection.scalars(select(t.version.c.version)))
    if len(versions) != 1:
        raise SchemaError(
            f"{t.version.name} must hold exactly one row, found {len(versions)}: "
            "it was changed by another program"
        )
    return int(versions[0])


def _refuse_other_version(stored: int, t: Tables) -> None:
    if stored < SCHEMA_VERSION:
        raise SchemaError(
            f"the triggers-sql tables with prefix {t.version.name.removesuffix('schema_version')!r} "
            f"have schema version {stored}, this library needs {SCHEMA_VERSION}: "
            "migrate them as the triggers-sql README's 'Schema versions' section describes "
            "(or keep using the older triggers-sql); nothing was written"
        )
    if stored > SCHEMA_VERSION:
        raise SchemaError(
            f"the triggers-sql tables have schema version {stored}, newer than this "
            f"library's {SCHEMA_VERSION}: upgrade triggers-sql; nothing was written"
        )


def check_schema(engine: Engine, t: Tables) -> list[str]:
    """Describe the tables, or raise :class:`SchemaError` if missing or another version."""
    stored = _stored_version(engine, t)
    if stored is None:
        raise SchemaError(
            f"no triggers-sql tables with prefix "
            f"{t.version.name.removesuffix('schema_version')!r} on {engine.url!r}: create them "
            "with `triggers schema create --backend sql --option url=...` or "
            "SQLStorageBackend.create_schema(url=...)"
        )
    _refuse_other_version(stored, t)
    present = set(inspect(engine).get_table_names(schema=t.metadata.schema))
    absent = [table.name for table in t.all if table.name not in present]
    if absent:
        raise SchemaError(f"schema version {stored} but tables are missing: {', '.join(absent)}")
    return [f"table {table.name}: ok (schema version {stored})" for table in t.all]


def create_schema(engine: Engine, t: Tables) -> list[str]:
    """Create the tables and record the version; idempotent, refuses another version."""
    stored = _stored_version(engine, t)
    if stored is not None:
        _refuse_other_version(stored, t)
        with transaction(engine, write=True) as connection:
            t.metadata.create_all(connection, checkfirst=True)
        return [f"table {table.name}: exists (schema version {stored})" for table in t.all]
    try:
        # One write transaction (SQLite: BEGIN IMMEDIATE), so concurrent
        # creators queue instead of failing on a lock upgrade.
        with transaction(engine, write=True) as connection:
            t.metadata.create_all(connection, checkfirst=True)
            if connection.scalar(select(t.version.c.version)) is None:
                connection.execute(t.version.insert().values(version=SCHEMA_VERSION))
    except DBAPIError:
        # Another process created the tables (or the version row) between our
        # check and our CREATE: fine if what is there now is our version.
        if _stored_version(engine, t) != SCHEMA_VERSION:
            raise
    return [f"table {table.name}: created (schema version {SCHEMA_VERSION})" for table in t.all]
