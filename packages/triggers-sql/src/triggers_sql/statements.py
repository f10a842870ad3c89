"""The load and the lease statements, built once per set of tables.

Building a SQLAlchemy statement (and its cache key) costs about as much CPU
as a round trip to a local server, so every statement here takes its values
as bound parameters (``p_...``) and is built once: each call only binds and
executes. Each is a single statement, atomic and reading one snapshot by
itself, so each runs without a transaction (see :mod:`.engines`).

* **Load**: ``SELECT ... UNION ALL ...`` returns the session row's version,
  the task configs, the instances (only the ``active`` ones for a fire,
  through the ``(uid_key, active)`` index) and the metadata, as
  ``(kind, name, body, version)`` rows.
* **Lease**: the session row carries a random token and an expiry written and
  judged on the database's clock (:mod:`.clock`). ``take`` is one conditional
  ``UPDATE`` (free, expired or already ours); ``create`` is the ``INSERT``
  for a session that has no row yet, which the primary key lets only one
  process win; ``renew`` and ``release`` only touch the row while the token
  holds it. With the same token, running any of them again after a lost
  connection ends in the same state.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from sqlalchemy import (
    BigInteger,
    Double,
    Text,
    bindparam,
    cast,
    insert,
    literal,
    null,
    select,
    true,
    union_all,
    update,
)
from sqlalchemy.sql.expression import BindParameter, Executable

from triggers_sql.clock import store_now
from triggers_sql.schema import Tables

__all__ = ["Statements", "statements"]


@dataclass(frozen=True)
class Statements:
    """The statements of a lock cycle but the save (see :mod:`.writes`)."""

    load_active: Executable
    load_all: Executable
    take: Executable
    create: Executable
    renew: Executable
    release: Executable


@functools.cache
def statements(t: Tables) -> Statements:
    key: BindParameter[str] = bindparam("p_key")
    token: BindParameter[str] = bindparam("p_token")
    sessions = t.sessions
    # Expiry on the database's clock (see .clock): the caller sends only the length.
    expires = store_now() + bindparam("p_ttl", type_=Double)
    held = (sessions.c.uid_key == key, sessions.c.lease_token == token)
    return Statements(
        load_active=_load(t, key, active_only=True),
        load_all=_load(t, key, active_only=False),
        take=update(sessions)
        .where(sessions.c.uid_key == key)
        .where(
            sessions.c.lease_token.is_(None)
            | (sessions.c.lease_token == token)
            | (sessions.c.lease_expires <= store_now())
        )
        .values(lease_token=token, lease_expires=expires),
        create=insert(sessions).values(
            uid_key=key,
            uid=bindparam("p_uid"),
            version=None,
            lease_token=token,
            lease_expires=expires,
        ),
        renew=update(sessions).where(*held).values(lease_expires=expires),
        release=update(sessions).where(*held).values(lease_token=None, lease_expires=None),
    )


def _load(t: Tables, key: BindParameter[str], *, active_only: bool) -> Executable:
    version = cast(null(), BigInteger)
    instances = select(literal("i"), t.instances.c.name, t.instances.c.record, version)
    instances = instances.where(t.instances.c.uid_key == key)
    if active_only:
        # "= true", not "IS TRUE": MariaDB uses the (uid_key, active) index
        # only for the former, and otherwise scans the whole history.
        instances = instances.where(t.instances.c.active == true())
    sessions = t.sessions
    return union_all(
        select(literal("s"), cast(null(), Text), cast(null(), Text), sessions.c.version).where(
            sessions.c.uid_key == key
        ),
        select(literal("c"), t.configs.c.name, t.configs.c.record, version).where(
            t.configs.c.uid_key == key
        ),
        instances,
        select(literal("m"), t.metas.c.name, t.metas.c.value, version).where(
            t.metas.c.uid_key == key
        ),
    )
