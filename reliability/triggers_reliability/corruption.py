"""Reading and corrupting a session's raw stored data, one small class per store.

The corruption scenario plays "another program" that damages what a backend
stored: garbage, a truncated document, data of a newer format or schema
version. Each store's class can ``snapshot`` everything stored for a session
(leases excluded: taking and releasing a lock may touch them) so the test can
prove that nothing the backend did afterwards overwrote the damaged data.
"""

from __future__ import annotations

import json
from typing import Any, Protocol

__all__ = ["KINDS", "CacheRawStore", "DynamoDBRawStore", "MongoRawStore", "RawStore", "SQLRawStore"]

KINDS = ("garbage", "truncated", "foreign_version")
"""The kinds of damage every store's class can do."""

GARBAGE = "\ufffd\x01 not a session {[\"' \\"
"""Text no JSON parser accepts, and no NUL (PostgreSQL's text type refuses NUL)."""


class RawStore(Protocol):
    """Raw access to one store's data for a session, bypassing the backend."""

    def snapshot(self, uid: str) -> Any:
        """Everything stored for ``uid`` except leases, as comparable plain data."""

    def damage(self, uid: str, kind: str) -> None:
        """Damage the stored session in the way ``kind`` (one of :data:`KINDS`) says."""


class SQLRawStore:
    """The triggers-sql tables of one table prefix.

    ``garbage`` and ``truncated`` damage the record of every stored task
    instance; ``foreign_version`` writes a newer schema version into the
    version table, as a newer release of the library (or any other program)
    would after migrating.
    """

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


class CacheRawStore:
    """The keys triggers-cache uses for a session in one Django cache, through its store.

    The snapshot is the head (on caches without compare-and-set, the pointer
    and the heads it leads to) and every history document it names. Every
    kind replaces the head document: ``garbage`` with bytes, ``truncated``
    with its first half, ``foreign_version`` with the same document under a
    format this library does not know.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def _store(self, uid: str) -> Any:
        from triggers_cache import CacheStorageBackend

        return CacheStorageBackend(uid, **self.options).store

    def _head_key(self, store: Any, uid: str) -> str:
        keys = store.keys_for(uid)
        head = store.heads.load(uid, keys).head
        assert head is not None, f"session {uid!r} is not stored"
        return str(store.heads.head_key(keys, head))

    def snapshot(self, uid: str) -> Any:
        from triggers.keyvalue.codec import decode_head, decode_pointer
        from triggers.keyvalue.layout import history_tokens

        store = self._store(uid)
        keys = store.keys_for(uid)
        stored = {"head": store.get(keys.head)}
        try:
            head = decode_head(uid, stored["head"])
        except Exception:
            try:  # a chained cache: the pointer, then the heads it may lead to
                pointer = decode_pointer(uid, stored["head"])
            except Exception:
                return stored
            for version in range(max(1, pointer.version - 2), pointer.version + 8):
                name = keys.chained_head(pointer.epoch, version)
                stored[name] = store.get(name)
            return stored
        if head is not None:
            for token in history_tokens(uid, head, lambda tokens: store.fetch(keys, tokens)):
                stored[token] = store.get(keys.document(token))
        return stored

    def damage(self, uid: str, kind: str) -> None:
        store = self._store(uid)
        key = self._head_key(store, uid)
        raw = store.get(key)
        document = raw.decode() if isinstance(raw, bytes) else str(raw)
        if kind == "garbage":
            damaged: Any = b"\x00\xff\xfe garbage \x80"
        elif kind == "truncated":
            damaged = document[: len(document) // 2]
        else:
            damaged = document.replace("triggers-cache/2", "triggers-cache/999", 1)
        store.set(key, damaged, None)


class MongoRawStore:
    """The triggers-mongo collections of one prefix.

    ``garbage`` and ``truncated`` damage the ``record`` (JSON text) of every
    stored task instance document; ``foreign_version`` replaces it with a
    BSON sub-document, as a newer layout (or another program) might store it.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        from triggers_mongo import clients, layout

        database = clients.client_for(options["url"])[options["database"]]
        names = layout.collection_names(options["collection"])
        self.sessions, self.items = database[names.sessions], database[names.items]

    def _key(self, uid: str) -> str:
        header = self.sessions.find_one({"_id": uid})
        assert header is not None, f"session {uid!r} is not stored"
        return str(header["key"])

    def snapshot(self, uid: str) -> Any:
        header = self.sessions.find_one({"_id": uid}, {"lease_token": 0, "lease_expires": 0})
        items = self.items.find({"session": self._key(uid)}, {"_id": 0})
        return header, sorted(items, key=lambda item: (item["kind"], item["name"], item["version"]))

    def damage(self, uid: str, kind: str) -> None:
        query = {"session": self._key(uid), "kind": "instance"}
        documents = list(self.items.find(query))
        assert documents, f"session {uid!r} has no stored instances to damage"
        for document in documents:
            record = document["record"]
            damaged: Any = {
                "garbage": GARBAGE,
                "truncated": record[: len(record) // 2],
                "foreign_version": {"format": 999, "record": record},
            }[kind]
            self.items.update_one({"_id": document["_id"]}, {"$set": {"record": damaged}})


class DynamoDBRawStore:
    """The session's items in a triggers-dynamodb table.

    ``garbage`` and ``truncated`` damage the ``body`` (JSON text) of every
    active instance item (``I#...``); ``foreign_version`` stores it as a
    native DynamoDB map, as a newer layout (or another program) might.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        from triggers_dynamodb.clients import client_for

        self.client = client_for(options["region_name"], options["endpoint_url"])
        self.table = options["table_name"]

    def _items(self, uid: str) -> list[dict[str, Any]]:
        found = self.client.query(
            TableName=self.table, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": uid}}, ConsistentRead=True,
        )
        items: list[dict[str, Any]] = found["Items"]
        return items

    def snapshot(self, uid: str) -> Any:
        leases = {"lease_token", "lease_expires"}
        return sorted(
            (json.dumps({k: v for k, v in item.items() if k not in leases}, sort_keys=True)
             for item in self._items(uid)),
        )

    def damage(self, uid: str, kind: str) -> None:
        items = [item for item in self._items(uid) if item["sk"]["S"].startswith("I")]
        assert items, f"session {uid!r} has no stored active instances to damage"
        for item in items:
            body = item["body"]["S"]
            damaged = {
                "garbage": {"S": GARBAGE},
                "truncated": {"S": body[: len(body) // 2]},
                "foreign_version": {"M": {"format": {"N": "999"}, "body": {"S": body}}},
            }[kind]
            self.client.update_item(
                TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET body = :b", ExpressionAttributeValues={":b": damaged},
            )
