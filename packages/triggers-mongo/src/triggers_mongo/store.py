"""``MongoStore``: one MongoDB collection of sessions, configured once per process.

What belongs to the collection rather than to one session: the options,
parsed and checked once (:mod:`.config`); the client (one per URL and
process, see :mod:`.clients`) and the collection with journaled writes; the
indexes, created once before the first session of the process uses them
(:meth:`MongoStore.prepare`); whether saves may run in transactions; how
pymongo fails (:mod:`.errors`); and the administration (:mod:`.admin`).

The session operations stay on :class:`~triggers_mongo.MongoStorageBackend`:
its save protocol builds on what that object last loaded (the header, the
dead copies) and on the client session its lease names, which are the
object's own, not the store's.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, Literal

from pymongo import MongoClient

from triggers.capabilities import Capabilities
from triggers.errors import TriggersError
from triggers.stores import Store
from triggers_mongo import admin, clients, config, errors
from triggers_mongo.writing import MAX_DOCUMENT_BYTES

__all__ = ["MAX_RECORD_BYTES", "MongoStore"]

Document = dict[str, Any]

MAX_RECORD_BYTES = MAX_DOCUMENT_BYTES - 1024 * 1024
"""Largest record we promise: one document, less room for its uid, name and fields."""


class MongoStore(Store):
    """One collection holding every session's documents (the options are documented on
    :class:`~triggers_mongo.MongoStorageBackend`)."""

    capabilities = Capabilities(
        shared_state=True,
        cross_process_locking=True,
        fenced_saves=True,
        skew_safe_leases=True,
        optimistic_saves=True,
        incremental_saves=True,
        partial_loads=True,
        ttl=True,
        max_record_bytes=MAX_RECORD_BYTES,
    )
    driver_errors = errors.DRIVER_ERRORS

    def __init__(
        self,
        *,
        url: str | None = None,
        client: MongoClient[Document] | None = None,
        database: str = "triggers",
        collection: str = "triggers",
        session_ttl: float | None = None,
        transactions: Literal["auto", "on", "off"] = "auto",
        **rest: Any,
    ) -> None:
        config.refuse_renamed(rest)
        super().__init__(**rest)
        bound = config.bind(url, client, database, collection)
        self.client = bound.client
        self.collection = bound.collection
        """The collection of headers and items, its writes journaled (see :mod:`.config`)."""
        self.write_concern = bound.write_concern
        self.where = bound.where
        """The server's URL (password hidden), or that the caller gave the client."""
        self._described = f"{bound.where} (database {database!r}, collection {collection!r})"
        self.session_ttl = config.session_ttl(session_ttl)
        self.transactions = config.transactions(transactions)

    def describe(self) -> str:
        return self._described

    # -- lifetime and errors ---------------------------------------------------------

    def prepare(self) -> None:
        """Create the indexes (and, with ``session_ttl``, the TTL index)."""
        admin.create_indexes(self.collection, expiring=self.session_ttl is not None)

    def translate(self, error: BaseException, action: str, uid: str | None) -> TriggersError:
        return errors.translate(error, action, uid, self.describe())

    def use_transactions(self) -> bool:
        """Whether a lock holder's save runs in a transaction (``transactions``; for
        ``"auto"``, what the server says it can do, asked once per client and process)."""
        if self.transactions == "auto":
            return clients.supports_transactions(self.client)
        return self.transactions == "on"

    # -- administration --------------------------------------------------------------

    def create_schema(self) -> list[str]:
        """Create the indexes (idempotent; with ``session_ttl``, the TTL index too)."""
        with self._translated("create the indexes"):
            return admin.create_indexes(self.collection, expiring=self.session_ttl is not None)

    def check_schema(self) -> list[str]:
        """Describe the indexes; raise ``SchemaError`` if one is missing."""
        with self._translated("check the indexes"):
            return admin.check_indexes(
                self.collection, self.where, expiring=self.session_ttl is not None
            )

    def session_uids(self) -> Iterator[str]:
        """Every saved session's uid."""
        with self._translated("list the sessions"):
            uids = admin.session_uids(self.collection)
        yield from uids

    @contextmanager
    def _translated(self, action: str) -> Iterator[None]:
        """Driver errors of an administration call, as :meth:`translate` makes them."""
        try:
            yield
        except errors.DRIVER_ERRORS as error:
            raise self.translate(error, action, None) from error
