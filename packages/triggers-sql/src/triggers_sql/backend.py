"""``SQLStorageBackend``: session state in SQL tables (entry point ``sql``).

The backend is its store (:class:`~triggers_sql.store.SQLStore`, one per
database, tables and process) and the options' documentation. How each
guarantee is kept (the tables are described in :mod:`.schema`):

* **Load**: one ``SELECT ... UNION ALL ...`` statement reads the session row,
  the task configs, the instances (only the ``active`` ones for a fire) and the
  metadata (:mod:`.statements`). One round trip, and one statement sees one
  consistent snapshot on every database, so a reader never sees half of a
  concurrent save. It runs without ``BEGIN``/``COMMIT`` (see :mod:`.engines`).
* **Save**: one conditional write of only what changed (:mod:`.writes`): the
  session row moves from the loaded version to the next only if it still has
  the loaded version and, for a save under the lock, the holder's lease
  token, or, for an optimistic save (``transact`` without a lease), no live
  lease at all; the changed rows are written only then, atomically with it.
  One statement on PostgreSQL and MariaDB, one transaction on SQLite. A
  refused save writes nothing and raises
  :class:`~triggers.errors.StaleSessionError` saying why (the lease was taken
  over, a lease holder is at work, the version moved on), which the core
  turns into a retry of an optimistic change.
* **Lock**: the session row carries a lease (random token and expiry, both
  written and judged on the database's clock, see :mod:`.clock`, so a process
  with a wrong clock cannot take a live lease); taking, renewing and
  releasing it are single statements (:mod:`.statements`).
* **Errors**: every database error reaches the caller as a
  :class:`~triggers.errors.StorageError` naming the session, the operation and
  the database (password hidden), with the driver's exception as its cause
  (:mod:`.errors`). A deadlock or serialization failure, which the database
  rolled back, is retried: a save or a lock taking up to 5 times by the
  store, a load or another lease step by the base class.
"""

from __future__ import annotations

from typing import ClassVar

from sqlalchemy import Engine

from triggers.capabilities import Capabilities
from triggers.stores import StoreStorageBackend
from triggers_sql.store import SQLStore

__all__ = ["SQLStorageBackend"]


class SQLStorageBackend(StoreStorageBackend):
    """Session state in SQLite, PostgreSQL or MariaDB/MySQL, through SQLAlchemy Core.

    Options (besides the common ``lease_ttl``, ``lock_timeout``, ``clock``):

    ``url``
        A SQLAlchemy database URL, e.g. ``sqlite:///triggers.db``,
        ``postgresql+psycopg://user@host/db``, ``mysql+pymysql://user@host/db``.
        One engine (and pool) per URL per process is shared by every session.
    ``engine``
        An existing :class:`~sqlalchemy.Engine` instead of ``url``. The caller
        owns it; in a process forked after it was used, the storage object
        drops the connections its pool inherited before its first statement.
    ``table_prefix`` (default ``"triggers_"``)
        Prefix of every table name, so several applications can share a schema.
    ``schema`` (default: the connection's)
        Database schema (PostgreSQL) or database (MySQL) holding the tables.
    ``create_tables`` (default ``True``)
        Create missing tables on first use. Teams that manage DDL themselves
        set it to ``False`` and run ``triggers schema create`` (or
        :meth:`create_schema`) once; the backend then only checks the version.

    An in-memory SQLite database (``sqlite://``) is private to one process:
    use it for tests, never to share sessions between processes.
    """

    store_class = SQLStore
    capabilities: ClassVar[Capabilities] = SQLStore.capabilities
    store: SQLStore

    @property
    def engine(self) -> Engine:
        """The engine this session's statements go through (its store's, for this process)."""
        return self.store.engine
