"""Administration: the indexes, their check, and the list of sessions.

For operators and the ``triggers`` command (``schema create|check``,
``migrate --all``) through :class:`~triggers_mongo.store.MongoStore`, which
also creates the indexes by itself before its first session uses them.
"""

from __future__ import annotations

from typing import Any

from pymongo.collection import Collection
from pymongo.database import Database

from triggers.errors import SchemaError
from triggers_mongo import layout

__all__ = ["check_indexes", "check_old_layout", "create_indexes", "session_uids"]

Document = dict[str, Any]


def create_indexes(collection: Collection[Document], *, expiring: bool) -> list[str]:
    """Create the indexes (idempotent; where sessions expire, the TTL index too); a line per
    index. Refuses a collection whose sessions an older version stored elsewhere."""
    check_old_layout(collection)
    indexes = [*layout.INDEXES, layout.TTL_INDEX] if expiring else layout.INDEXES
    return [f"{collection.name}: index {name}" for name in collection.create_indexes(indexes)]


def check_indexes(collection: Collection[Document], where: str, *, expiring: bool) -> list[str]:
    """Describe the indexes; raise ``SchemaError`` if one is missing (the TTL index: where
    sessions expire), or if the older layout's collections hold sessions."""
    check_old_layout(collection)
    found = {index["name"] for index in collection.list_indexes()}
    indexes = [*layout.INDEXES, layout.TTL_INDEX] if expiring else layout.INDEXES
    wanted = [index.document["name"] for index in indexes]
    missing = [name for name in wanted if name not in found]
    if missing:
        raise SchemaError(
            f"{where}: collection {collection.name!r} lacks the indexes {missing}; run "
            "`triggers --backend mongo --option url=... schema create` or "
            "MongoStorageBackend.create_schema(...)"
        )
    return [f"{collection.name}: index {name}" for name in sorted(found)]


def session_uids(collection: Collection[Document]) -> list[str]:
    """Every saved session's uid (headers of at least one save)."""
    headers = {"seq": layout.SEQ_HEADER, "version": {"$gte": 1}}
    return [header["_id"] for header in collection.find(headers, {"_id": 1})]


def check_old_layout(collection: Collection[Document]) -> None:
    """Refuse to run over sessions that an older triggers-mongo stored elsewhere.

    Before this layout, ``collection="x"`` kept headers in ``x_sessions`` and
    items in ``x_items``. Those sessions are not read here; rather than have
    them look empty, say so.
    """
    database: Database[Document] = collection.database
    old = f"{collection.name}_items"
    listed = database.list_collection_names(filter={"name": old})
    if listed and database[old].find_one({}, {"_id": 1}) is not None:
        raise SchemaError(
            f"collection {old!r} holds sessions in the layout of triggers-mongo 0.1 "
            f"(headers in {collection.name + '_sessions'!r}), which this version does not "
            f"read; it keeps everything in {collection.name!r}. Export them with the older "
            "version (`triggers export`) and import them with this one (`triggers import`), "
            "then drop the old collections"
        )
