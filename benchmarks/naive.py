"""The naive baseline: a backend written with only the two documented methods.

:class:`NaiveBackend` is what the framework's original cache backend did and
what a user writing a custom backend from the documentation gets: the whole
session is one JSON document, read whole by every load and rewritten whole by
every save, on the same store as the target it is compared with. Its lock is
the base class's process-local lease, which is all the two methods give it.

Its cost grows with the session; the point of the native backends is that
theirs does not.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol

from sqlalchemy import Column, Engine, MetaData, String, Table, Text, select
from sqlalchemy.dialects import mysql, postgresql, sqlite

from triggers.storage import TriggerStorageBackend

__all__ = ["BlobStore", "CacheBlobs", "DynamoDBBlobs", "MemoryBlobs", "MongoBlobs", "NaiveBackend", "SQLBlobs"]


class BlobStore(Protocol):
    """Where the naive backend keeps one text document per session."""

    def get(self, uid: str) -> str | None: ...

    def put(self, uid: str, document: str) -> None: ...


class NaiveBackend(TriggerStorageBackend):
    """The whole session as one JSON blob in ``blobs`` (``_load_from_backend`` / ``_save`` only)."""

    def __init__(self, uid: str, *, blobs: BlobStore, **options: Any) -> None:
        super().__init__(uid, **options)
        self.blobs = blobs

    def _load_from_backend(self) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
        document = self.blobs.get(self.uid)
        if document is None:
            return {}, {}, {}
        session = json.loads(document)
        return session["tasks"], session["instances"], session["metadata"]

    def _save(self) -> None:
        self.blobs.put(
            self.uid,
            json.dumps({
                "tasks": self._serialize(self._configs),
                "instances": self._serialize(self._instances),
                "metadata": self._serialize(self._metas),
            }),
        )


class SQLBlobs:
    """Blobs in one table ``<prefix>naive (uid, document)``, upserted in one statement."""

    def __init__(self, engine: Engine, prefix: str) -> None:
        self.engine = engine
        self.table = Table(
            f"{prefix}naive",
            MetaData(),
            Column("uid", String(191), primary_key=True),
            Column("document", Text().with_variant(mysql.LONGTEXT(), "mysql", "mariadb")),
        )
        self.table.create(engine, checkfirst=True)

    def get(self, uid: str) -> str | None:
        with self.engine.connect() as connection:
            document: str | None = connection.scalar(
                select(self.table.c.document).where(self.table.c.uid == uid)
            )
            return document

    def put(self, uid: str, document: str) -> None:
        dialect = self.engine.dialect.name
        row = {"uid": uid, "document": document}
        with self.engine.begin() as connection:
            if dialect in ("mysql", "mariadb"):
                mysql_insert = mysql.insert(self.table).values(row)
                connection.execute(
                    mysql_insert.on_duplicate_key_update(document=mysql_insert.inserted.document)
                )
            else:
                module: Any = postgresql if dialect == "postgresql" else sqlite
                insert = module.insert(self.table).values(row)
                connection.execute(
                    insert.on_conflict_do_update(
                        index_elements=["uid"], set_={"document": insert.excluded.document}
                    )
                )

    def drop(self) -> None:
        self.table.drop(self.engine, checkfirst=True)


class CacheBlobs:
    """Blobs in a Django cache, one key per session (no expiry)."""

    def __init__(self, alias: str, prefix: str) -> None:
        self.alias = alias
        self.prefix = prefix

    def _cache(self) -> Any:
        from triggers_cache.caches import cache_for

        return cache_for(self.alias)

    def get(self, uid: str) -> str | None:
        document: str | None = self._cache().get(f"{self.prefix}naive:{uid}")
        return document

    def put(self, uid: str, document: str) -> None:
        self._cache().set(f"{self.prefix}naive:{uid}", document, timeout=None)


class MongoBlobs:
    """Blobs in one collection, ``{_id: uid, document: text}``, replaced whole."""

    def __init__(self, collection: Any) -> None:
        self.collection = collection

    def get(self, uid: str) -> str | None:
        found = self.collection.find_one({"_id": uid})
        return None if found is None else str(found["document"])

    def put(self, uid: str, document: str) -> None:
        self.collection.replace_one({"_id": uid}, {"_id": uid, "document": document}, upsert=True)


class DynamoDBBlobs:
    """Blobs as one item each (DynamoDB refuses items over 400 KB, so large sessions fail)."""

    def __init__(self, client: Any, table: str, prefix: str) -> None:
        self.client = client
        self.table = table
        self.prefix = prefix

    def _key(self, uid: str) -> dict[str, Any]:
        return {"pk": {"S": f"{self.prefix}naive#{uid}"}, "sk": {"S": "blob"}}

    def get(self, uid: str) -> str | None:
        found = self.client.get_item(TableName=self.table, Key=self._key(uid), ConsistentRead=True)
        item = found.get("Item")
        return None if item is None else str(item["document"]["S"])

    def put(self, uid: str, document: str) -> None:
        self.client.put_item(TableName=self.table, Item={**self._key(uid), "document": {"S": document}})


class MemoryBlobs:
    """Blobs in a dict of this process (with the ``memory`` target: the core's cost alone)."""

    def __init__(self) -> None:
        self.documents: dict[str, str] = {}

    def get(self, uid: str) -> str | None:
        return self.documents.get(uid)

    def put(self, uid: str, document: str) -> None:
        self.documents[uid] = document
