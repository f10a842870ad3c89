"""The floor: the least I/O one fire needs, done through the raw driver.

A fire must read the session's state and write the new state only if nobody
else wrote in between: one read and one conditional write. Each floor does
exactly that on its store, on one key / row holding a version number and a
document of :data:`DOCUMENT_BYTES` (about one task instance's record), with
the driver's own connection and nothing of this library in the way. A
backend's fire is quoted as a multiple of it.

Each ``fire()`` returns the :class:`~benchmarks.counting.Tally` of what it
sent, counted by construction (the floor issues every call itself).
"""

from __future__ import annotations

import json
from typing import Any, Protocol

from sqlalchemy import Engine

from benchmarks.counting import Tally, payload_bytes

__all__ = [
    "DOCUMENT_BYTES",
    "DynamoDBFloor",
    "Floor",
    "MemcachedFloor",
    "MemoryFloor",
    "MongoFloor",
    "RedisFloor",
    "SQLFloor",
]

DOCUMENT_BYTES = 512


def document(version: int) -> str:
    """A JSON document of exactly :data:`DOCUMENT_BYTES` bytes."""
    head = json.dumps({"version": version, "padding": ""})
    return head[:-2] + "x" * (DOCUMENT_BYTES - len(head)) + '"}'


class Floor(Protocol):
    """One read plus one conditional write, on one store."""

    def fire(self) -> Tally: ...

    def close(self) -> None: ...


class SQLFloor:
    """``SELECT`` the row, ``UPDATE ... WHERE version = ?``, ``COMMIT``, on a DBAPI connection."""

    def __init__(self, engine: Engine, prefix: str) -> None:
        self.dialect = engine.dialect.name
        self.table = f"{prefix}floor"
        # A DBAPI connection of its own, held for the whole run: no pool, no pings.
        pooled = engine.raw_connection()
        pooled.detach()
        connection: Any = pooled.dbapi_connection
        self.connection = connection
        mark = "?" if self.dialect == "sqlite" else "%s"
        self.select = f"SELECT version, document FROM {self.table} WHERE id = 1"
        self.update = (
            f"UPDATE {self.table} SET version = {mark}, document = {mark} "
            f"WHERE id = 1 AND version = {mark}"
        )
        cursor = self.connection.cursor()
        if self.dialect == "sqlite":
            self.connection.isolation_level = None
            cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = NORMAL")
        text = "LONGTEXT" if self.dialect in ("mysql", "mariadb") else "TEXT"
        cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
        cursor.execute(
            f"CREATE TABLE {self.table} (id INTEGER PRIMARY KEY, version BIGINT, document {text})"
        )
        cursor.execute(f"INSERT INTO {self.table} VALUES (1, 0, {mark})", (document(0),))
        if self.dialect != "sqlite":
            self.connection.commit()
        cursor.close()

    def fire(self) -> Tally:
        tally = Tally()
        cursor = self.connection.cursor()
        if self.dialect == "sqlite":
            cursor.execute("BEGIN IMMEDIATE")  # what a writer must do on SQLite
            tally.add()
        elif self.dialect == "postgresql":
            tally.add()  # psycopg sends BEGIN before the first statement
        cursor.execute(self.select)
        version, _ = cursor.fetchone()
        tally.add()
        written = document(version + 1)
        cursor.execute(self.update, (version + 1, written, version))
        tally.add(1, payload_bytes(written) + 16)
        if cursor.rowcount != 1:
            raise RuntimeError(f"floor on {self.dialect}: the conditional write matched no row")
        self.connection.commit()
        tally.add()
        cursor.close()
        return tally

    def close(self) -> None:
        cursor = self.connection.cursor()
        cursor.execute(f"DROP TABLE IF EXISTS {self.table}")
        if self.dialect != "sqlite":
            self.connection.commit()
        cursor.close()
        self.connection.close()


_REDIS_SWAP = """
if redis.call('HGET', KEYS[1], 'version') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'version', ARGV[2], 'document', ARGV[3])
  return 1
end
return 0
"""


class RedisFloor:
    """``HGETALL`` the hash, then a compare-and-set script (``EVALSHA``): one call each."""

    def __init__(self, url: str, key: str) -> None:
        import redis

        self.client: Any = redis.Redis.from_url(url)
        self.key = key
        self.client.hset(key, mapping={"version": 0, "document": document(0)})
        self.swap = self.client.register_script(_REDIS_SWAP)
        self.swap(keys=[key], args=[-1, 0, ""])  # load the script once, outside the timings

    def fire(self) -> Tally:
        tally = Tally()
        stored = self.client.hgetall(self.key)
        tally.add()
        version = int(stored[b"version"])
        written = document(version + 1)
        if self.swap(keys=[self.key], args=[version, version + 1, written]) != 1:
            raise RuntimeError("floor on Redis: the conditional write failed")
        tally.add(1, payload_bytes(written) + 16)
        return tally

    def close(self) -> None:
        self.client.delete(self.key)
        self.client.close()


class MemcachedFloor:
    """``gets`` (value and CAS token), then ``cas``: memcached's own compare-and-set."""

    def __init__(self, host: str, port: int, key: str) -> None:
        from pymemcache.client.base import Client

        self.client: Any = Client((host, port))
        self.key = key
        self.client.set(key, document(0))

    def fire(self) -> Tally:
        tally = Tally()
        stored, token = self.client.gets(self.key)
        tally.add()
        version = json.loads(stored)["version"]
        written = document(version + 1)
        if not self.client.cas(self.key, written, token, noreply=False):
            raise RuntimeError("floor on memcached: the conditional write failed")
        tally.add(1, payload_bytes(written))
        return tally

    def close(self) -> None:
        self.client.delete(self.key)
        self.client.close()


class MongoFloor:
    """``find_one`` by ``_id``, then ``update_one`` matching the version read."""

    def __init__(self, url: str, database: str, collection: str) -> None:
        from pymongo import MongoClient

        self.client: Any = MongoClient(url)
        self.collection: Any = self.client[database][collection]
        self.collection.replace_one(
            {"_id": 1}, {"_id": 1, "version": 0, "document": document(0)}, upsert=True
        )

    def fire(self) -> Tally:
        tally = Tally()
        stored = self.collection.find_one({"_id": 1})
        tally.add()
        version = stored["version"]
        written = document(version + 1)
        result = self.collection.update_one(
            {"_id": 1, "version": version}, {"$set": {"version": version + 1, "document": written}}
        )
        tally.add(1, payload_bytes(written) + 16)
        if result.modified_count != 1:
            raise RuntimeError("floor on MongoDB: the conditional write matched no document")
        return tally

    def close(self) -> None:
        self.collection.drop()
        self.client.close()


class DynamoDBFloor:
    """``GetItem`` (strongly consistent), then ``PutItem`` with ``version = :read``."""

    def __init__(self, client: Any, table: str, key: str) -> None:
        self.client = client
        self.table = table
        self.key = {"pk": {"S": key}, "sk": {"S": "floor"}}
        self.client.put_item(TableName=table, Item=self._item(0))

    def _item(self, version: int) -> dict[str, Any]:
        return {**self.key, "version": {"N": str(version)}, "document": {"S": document(version)}}

    def fire(self) -> Tally:
        tally = Tally()
        stored = self.client.get_item(TableName=self.table, Key=self.key, ConsistentRead=True)
        tally.add()
        version = int(stored["Item"]["version"]["N"])
        self.client.put_item(
            TableName=self.table,
            Item=self._item(version + 1),
            ConditionExpression="version = :read",
            ExpressionAttributeValues={":read": {"N": str(version)}},
        )
        tally.add(1, DOCUMENT_BYTES + 16)
        return tally

    def close(self) -> None:
        self.client.delete_item(TableName=self.table, Key=self.key)


class MemoryFloor:
    """A dict read, then a write if the version is unchanged (under a lock): no I/O at all."""

    def __init__(self) -> None:
        import threading

        self.mutex = threading.Lock()
        self.stored: dict[str, Any] = {"version": 0, "document": document(0)}

    def fire(self) -> Tally:
        with self.mutex:
            version = self.stored["version"]
        written = document(version + 1)
        with self.mutex:
            if self.stored["version"] != version:
                raise RuntimeError("floor in memory: the conditional write failed")
            self.stored = {"version": version + 1, "document": written}
        return Tally()

    def close(self) -> None:
        self.stored = {}
