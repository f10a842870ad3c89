"""The save: one conditional write of a session's changes, in as few round trips as each database allows.

A save moves the session row from the version it loaded to the next one, on a
condition, the *fence*; only when the fence matches are the changed rows
written, all in the same atomic unit. The fence of

* a save under a lease: the stored version is the loaded one, and the
  saver's lease token still holds the row;
* an optimistic save (no lease, see ``optimistic_saves`` in the core): the
  stored version is the loaded one, and nobody holds a live lease: the token
  is empty or its expiry has passed by the database's clock (:mod:`.clock`).
  A session that did not exist (no loaded version) is created by the save:
  the row is inserted, or, if a row holding only a lease is there, updated
  on the same condition. Of two first writers the primary key lets one win;
  the other finds a version and is refused.

A refused save writes nothing and returns the session row as the write found
it (:class:`Outcome`), so the caller can say why: the lease was taken over,
a lease holder is at work, or the version moved on.

How each database does it:

* **PostgreSQL: one statement.** The fence is a data-modifying CTE (``UPDATE
  ... RETURNING``, or for a new session ``INSERT ... ON CONFLICT DO UPDATE
  ... WHERE ... RETURNING``); each upsert and the metadata delete is a CTE of
  its own whose rows (passed as arrays, ``unnest``) are written only if the
  fence returned its row. The final ``SELECT`` returns whether it did, and
  the session row as the statement's snapshot shows it. A statement is atomic
  by itself, so it runs in autocommit: one round trip, no ``BEGIN`` or
  ``COMMIT``. The fence's row lock serializes concurrent savers; one that
  waited re-checks the fence against the winner's row and is refused.
* **MariaDB: one compound statement** (``BEGIN NOT ATOMIC ... END``):
  ``START TRANSACTION``, the fence ``UPDATE``, then ``IF ROW_COUNT() = 1``
  the upserts and ``COMMIT``, else a read of the session row and
  ``ROLLBACK``; an error handler rolls back and re-raises the error. One
  round trip. A save whose records would not fit in one packet
  (``max_allowed_packet``, see :mod:`.limits`) goes the third way.
* **SQLite, MySQL, and MariaDB saves too big for one packet (or sent
  through another driver than PyMySQL): one transaction** of several
  statements: ``BEGIN`` (``BEGIN IMMEDIATE`` on SQLite), the fence, one
  upsert per changed table (``executemany``), the metadata delete,
  ``COMMIT``. SQLite has no statement writing to several tables, and MySQL no
  compound statements outside stored programs. A refused fence reads the
  session row inside the failed transaction. (One statement is possible on
  SQLite too, an ``INSERT`` into a view whose ``INSTEAD OF`` trigger does
  all of it; measured, it saved 0.06 ms of a 0.7 ms fire, since SQLite's
  calls do not cross a network: not worth schema objects of its own.)

A lost connection: see :func:`.engines.run_conditional_write` (one
statement) and :func:`.engines.run_transaction`.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import (
    Boolean,
    Connection,
    Engine,
    Table,
    Text,
    any_,
    bindparam,
    delete,
    exists,
    func,
    or_,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.sql.elements import ColumnElement
from sqlalchemy.sql.expression import Executable

from triggers.errors import StaleSessionError
from triggers_sql import engines
from triggers_sql.clock import store_now
from triggers_sql.schema import Tables

__all__ = ["Outcome", "Write", "refusal", "save"]

Row = tuple[str, ...]
"""A record as written: ``(name_key, name, body)``, plus ``active`` for an instance."""

_DATA = (("c", "configs", "record"), ("i", "instances", "record"), ("m", "metas", "value"))
"""Each table of records: its letter (for parameter names), attribute of Tables, body column."""

_ROW_OVERHEAD = 256
"""Bytes of statement text per record around its values (MariaDB's packet budget)."""


@dataclass(frozen=True)
class Write:
    """What one save writes, and its fence."""

    key: str
    uid: str
    """The uid as stored (JSON text), for a row this save may create."""
    base_version: int | None
    new_version: int
    token: str | None
    """The saver's lease token; ``None`` for an optimistic save."""
    configs: Sequence[Row] = ()
    instances: Sequence[tuple[str, str, str, bool]] = ()
    metas: Sequence[Row] = ()
    deleted: Sequence[str] = ()
    """Name keys of the metadata keys to remove."""

    @property
    def creates(self) -> bool:
        """An optimistic save of a session that had no version: its row may not exist yet."""
        return self.token is None and self.base_version is None

    def records(self, kind: str) -> Sequence[tuple[Any, ...]]:
        return {"c": self.configs, "i": self.instances, "m": self.metas}[kind]

    def payload_bytes(self) -> int:
        """Bytes of the records' text, plus room for the statement around each."""
        rows = [*self.configs, *self.instances, *self.metas]
        text = sum(len(v.encode("utf-8")) for row in rows for v in row if isinstance(v, str))
        return text + _ROW_OVERHEAD * (len(rows) + len(self.deleted) + 1)


@dataclass(frozen=True)
class Outcome:
    """Whether the fence matched; if not, the session row as the write found it."""

    saved: bool
    version: int | None = None
    holder: str | None = None
    """The lease token on the row (``None``: no lease)."""
    live: bool | None = None
    """Whether that lease had not expired yet, by the database's clock."""


def refusal(uid: str, write: Write, outcome: Outcome) -> StaleSessionError:
    """Why the fence did not match, in core's words for refusals."""
    if write.token is not None and outcome.holder != write.token:
        return StaleSessionError.lease_taken_over(uid)
    if write.token is None and outcome.holder is not None and outcome.live:
        return StaleSessionError.leased(uid)
    if write.base_version is None:
        return StaleSessionError.created_elsewhere(uid)
    return StaleSessionError.version_moved(uid, write.base_version, outcome.version)


def save(engine: Engine, t: Tables, write: Write, *, packet_limit: int | None) -> Outcome:
    """Write ``write`` if its fence matches, in one atomic unit (see the module docstring).

    ``packet_limit``: the most bytes of records one statement may carry
    (MariaDB's, from :func:`.limits.record_limit`), or ``None``.
    """
    dialect = engine.dialect
    if dialect.name == "postgresql":
        work = functools.partial(_postgresql, t, write)
        return engines.run_conditional_write(engine, work, _saved)
    fits = packet_limit is None or write.payload_bytes() <= packet_limit
    # PyMySQL: the driver whose parameter style and result sets the compound
    # statement is written (and tested) for.
    if getattr(dialect, "is_mariadb", False) and dialect.driver == "pymysql" and fits:
        work = functools.partial(_mariadb, t, write)
        return engines.run_conditional_write(engine, work, _saved)
    return engines.run_transaction(
        engine, functools.partial(_in_transaction, t, write), write=True
    )


def _saved(outcome: Outcome) -> bool:
    return outcome.saved


def _fence_condition(t: Tables, optimistic: bool) -> ColumnElement[bool]:
    sessions = t.sessions
    if optimistic:
        return or_(sessions.c.lease_token.is_(None), sessions.c.lease_expires <= store_now())
    return sessions.c.lease_token == bindparam("p_token")


def _fence_update(t: Tables, optimistic: bool) -> Any:
    """``UPDATE`` of the session row to the new version, if it matches the fence."""
    sessions = t.sessions
    return (
        update(sessions)
        .where(
            sessions.c.uid_key == bindparam("p_key"),
            sessions.c.version.is_not_distinct_from(bindparam("p_version")),
            _fence_condition(t, optimistic),
        )
        .values(version=bindparam("p_new_version"))
    )


def _fence_create(t: Tables, dialect: str) -> Any:
    """PostgreSQL and SQLite: insert the session row, or update a lease-only row if free."""
    sessions = t.sessions
    module: Any = postgresql if dialect == "postgresql" else sqlite
    statement = module.insert(sessions).values(
        uid_key=bindparam("p_key"), uid=bindparam("p_uid"), version=bindparam("p_new_version")
    )
    return statement.on_conflict_do_update(
        index_elements=[sessions.c.uid_key],
        set_={"version": statement.excluded.version},
        where=sessions.c.version.is_(None) & _fence_condition(t, optimistic=True),
    )


def _common_params(write: Write) -> dict[str, Any]:
    return {
        "p_key": write.key,
        "p_uid": write.uid,
        "p_version": write.base_version,
        "p_new_version": write.new_version,
        "p_token": write.token,
    }


# -- PostgreSQL: one statement -------------------------------------------------


def _postgresql(t: Tables, write: Write, connection: Connection) -> Outcome:
    kinds = frozenset(kind for kind, _, _ in _DATA if write.records(kind))
    statement = _postgresql_statement(
        t, write.token is None, write.creates, kinds, bool(write.deleted)
    )
    params = _common_params(write)
    for kind, _, body in _DATA:
        rows = write.records(kind)
        if rows:
            columns = zip(*rows, strict=True)
            params.update(zip(_array_names(kind, body), map(list, columns), strict=False))
    params["p_deleted"] = list(write.deleted)
    saved, version, holder, live = connection.execute(statement, params).one()
    return Outcome(bool(saved), version, holder, live)


def _array_names(kind: str, body: str) -> list[str]:
    columns = ["name_key", "name", body, *(["active"] if kind == "i" else [])]
    return [f"p_{kind}_{column}" for column in columns]


@functools.cache
def _postgresql_statement(
    t: Tables, optimistic: bool, creates: bool, kinds: frozenset[str], deletes: bool
) -> Executable:
    fence_write = _fence_create(t, "postgresql") if creates else _fence_update(t, optimistic)
    fence = fence_write.returning(t.sessions.c.uid_key).cte("fence")
    matched = exists(select(fence.c.uid_key))
    writes = [
        _postgresql_upsert(getattr(t, table), kind, body, matched)
        for kind, table, body in _DATA
        if kind in kinds
    ]
    if deletes:
        metas = t.metas
        names = any_(bindparam("p_deleted", type_=postgresql.ARRAY(Text)))
        writes.append(
            delete(metas)
            .where(metas.c.uid_key == bindparam("p_key"), metas.c.name_key == names, matched)
            .cte("m_deleted")
        )
    fenced = select(func.count().label("saved")).select_from(fence).subquery("fenced")
    sessions = t.sessions
    found = fenced.outerjoin(sessions, sessions.c.uid_key == bindparam("p_key"))
    return (
        select(
            fenced.c.saved,
            sessions.c.version,
            sessions.c.lease_token,
            sessions.c.lease_expires > store_now(),
        )
        .select_from(found)
        .add_cte(*writes)
    )


def _postgresql_upsert(table: Table, kind: str, body: str, matched: Any) -> Any:
    """A CTE upserting the rows passed as arrays, if the fence matched."""
    columns = ["name_key", "name", body, *(["active"] if kind == "i" else [])]
    arrays = [
        bindparam(name, type_=postgresql.ARRAY(Boolean if column == "active" else Text))
        for name, column in zip(_array_names(kind, body), columns, strict=True)
    ]
    rows = func.unnest(*arrays).table_valued(*columns).render_derived(name=f"{kind}_rows")
    source = select(bindparam("p_key"), *(rows.c[column] for column in columns)).where(matched)
    statement = postgresql.insert(table).from_select(["uid_key", *columns], source)
    return statement.on_conflict_do_update(
        index_elements=["uid_key", "name_key"],
        set_={column: statement.excluded[column] for column in columns[2:]},
    ).cte(f"{kind}_written")


# -- MariaDB: one compound statement -------------------------------------------


def _mariadb(t: Tables, write: Write, connection: Connection) -> Outcome:
    sql, params = _mariadb_block(connection, t, write)
    saved, version, holder, live = connection.exec_driver_sql(sql, params).one()
    return Outcome(bool(saved), version, holder, None if live is None else bool(live))


def _mariadb_block(connection: Connection, t: Tables, write: Write) -> tuple[str, dict[str, Any]]:
    """The compound statement of a save and its parameters (PyMySQL's ``%(name)s``)."""
    quote = connection.dialect.identifier_preparer.format_table

    def table(name: Table) -> str:
        return quote(name).replace("%", "%%")

    sessions = table(t.sessions)
    now = str(store_now().compile(dialect=connection.dialect))
    free = f"(lease_token IS NULL OR lease_expires <= {now})"
    params: dict[str, Any] = {
        "key": write.key, "uid": write.uid, "base": write.base_version,
        "new": write.new_version, "token": write.token,
    }
    lines = [
        "BEGIN NOT ATOMIC",
        "DECLARE stored BIGINT; DECLARE holder VARCHAR(64); DECLARE live INT;",
        "DECLARE EXIT HANDLER FOR SQLEXCEPTION BEGIN ROLLBACK; RESIGNAL; END;",
        "START TRANSACTION;",
    ]
    if write.creates:  # a row to fence on, unless there is one (a lease's, or the winner's)
        lines.append(f"INSERT INTO {sessions} (uid_key, uid) VALUES (%(key)s, %(uid)s) "
                     "ON DUPLICATE KEY UPDATE uid_key = uid_key;")
    condition = free if write.token is None else "lease_token = %(token)s"
    lines += [
        f"UPDATE {sessions} SET version = %(new)s "
        f"WHERE uid_key = %(key)s AND version <=> %(base)s AND {condition};",
        "IF ROW_COUNT() = 1 THEN",
        *_mariadb_records(write, lambda name: table(getattr(t, name)), params),
        "COMMIT;",
        "SELECT 1, NULL, NULL, NULL;",
        "ELSE",
        f"SELECT version, lease_token, lease_expires > {now} INTO stored, holder, live "
        f"FROM {sessions} WHERE uid_key = %(key)s;",
        "ROLLBACK;",
        "SELECT 0, stored, holder, live;",
        "END IF;",
        "END",
    ]
    return "\n".join(lines), params


def _mariadb_records(
    write: Write, table: Callable[[str], str], params: dict[str, Any]
) -> list[str]:
    """The upserts (multi-row ``VALUES``) and the delete of a save, adding their values to ``params``."""
    statements = []
    for kind, name, body in _DATA:
        rows = write.records(kind)
        if not rows:
            continue
        columns = ["name_key", "name", body, *(["active"] if kind == "i" else [])]
        values = []
        for number, row in enumerate(rows):
            names = [f"{kind}{number}_{column}" for column in columns]
            params.update(zip(names, row, strict=True))
            values.append("(%(key)s, " + ", ".join(f"%({n})s" for n in names) + ")")
        updates = ", ".join(f"{column} = VALUES({column})" for column in columns[2:])
        statements.append(f"INSERT INTO {table(name)} (uid_key, {', '.join(columns)}) "
                          f"VALUES {', '.join(values)} ON DUPLICATE KEY UPDATE {updates};")
    if write.deleted:
        names = [f"d{number}" for number in range(len(write.deleted))]
        params.update(zip(names, write.deleted, strict=True))
        statements.append(f"DELETE FROM {table('metas')} WHERE uid_key = %(key)s AND name_key IN ("
                          + ", ".join(f"%({n})s" for n in names) + ");")
    return statements


# -- everything else: one transaction of several statements ---------------------


def _in_transaction(t: Tables, write: Write, connection: Connection) -> Outcome:
    dialect = connection.dialect.name
    fence = _transaction_fences(t, dialect, write.token is None, write.creates)
    params = _common_params(write)
    matched = 0
    for statement in fence:
        matched = connection.execute(statement, params).rowcount
    if matched != 1:
        sessions = t.sessions
        row = connection.execute(
            select(sessions.c.version, sessions.c.lease_token, sessions.c.lease_expires > store_now())
            .where(sessions.c.uid_key == write.key)
        ).first()
        return Outcome(False, *row) if row is not None else Outcome(False)
    for kind, name, body in _DATA:
        rows = write.records(kind)
        if rows:
            columns = ["name_key", "name", body, *(["active"] if kind == "i" else [])]
            records = [{"uid_key": write.key, **dict(zip(columns, row, strict=True))} for row in rows]
            table: Table = getattr(t, name)
            connection.execute(_upsert_statement(table, dialect, tuple(columns[2:])), records)
    if write.deleted:
        metas = t.metas
        connection.execute(
            delete(metas).where(
                metas.c.uid_key == write.key, metas.c.name_key.in_(list(write.deleted))
            )
        )
    return Outcome(True)


@functools.cache
def _transaction_fences(
    t: Tables, dialect: str, optimistic: bool, creates: bool
) -> tuple[Executable, ...]:
    """The fence statements of a save, in order; the last one's rowcount says if it matched."""
    if not creates:
        return (_fence_update(t, optimistic),)
    if dialect in ("postgresql", "sqlite"):
        return (_fence_create(t, dialect),)
    # MySQL: make sure there is a row (its affected-rows count would not say
    # whether an ON DUPLICATE KEY UPDATE changed it), then fence on it.
    sessions = t.sessions
    ensure = mysql.insert(sessions).values(uid_key=bindparam("p_key"), uid=bindparam("p_uid"))
    return (ensure.on_duplicate_key_update(uid_key=sessions.c.uid_key), _fence_update(t, True))


@functools.cache
def _upsert_statement(table: Table, dialect: str, columns: tuple[str, ...]) -> Executable:
    """``INSERT ... ON CONFLICT`` / ``ON DUPLICATE KEY UPDATE`` of ``columns``, built once."""
    if dialect in ("postgresql", "sqlite"):
        module: Any = postgresql if dialect == "postgresql" else sqlite
        statement = module.insert(table)
        return statement.on_conflict_do_update(  # type: ignore[no-any-return]
            index_elements=["uid_key", "name_key"],
            set_={column: statement.excluded[column] for column in columns},
        )
    upsert = mysql.insert(table)
    return upsert.on_duplicate_key_update({column: upsert.inserted[column] for column in columns})

