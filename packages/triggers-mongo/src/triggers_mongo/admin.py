"""Administration: the indexes up front, their check, and the list of sessions.

For operators and the ``triggers`` command (``schema create|check``,
``migrate --all``); a storage object creates the indexes by itself on first
use (once per process and client).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triggers.errors import SchemaError
from triggers_mongo import config, layout
from triggers_mongo.errors import driver_errors

__all__ = ["check_schema", "create_schema", "session_uids"]


def create_schema(options: Mapping[str, Any]) -> list[str]:
    """Create the indexes (idempotent; with ``session_ttl``, the TTL index too); one line per index."""
    target = config.Target.of(options)
    with driver_errors("create the indexes", target.where):
        config.check_old_layout(target.collection)
        return config.create_indexes(target.collection, expiring=target.session_ttl is not None)


def check_schema(options: Mapping[str, Any]) -> list[str]:
    """Describe the indexes; raise ``SchemaError`` if one is missing (the TTL index: with
    ``session_ttl``), or if the older layout's collections hold sessions."""
    target = config.Target.of(options)
    collection, where = target.collection, target.where
    with driver_errors("check the indexes", where):
        config.check_old_layout(collection)
        found = {index["name"] for index in collection.list_indexes()}
    indexes = [*layout.INDEXES, layout.TTL_INDEX] if target.session_ttl is not None else layout.INDEXES
    wanted = [index.document["name"] for index in indexes]
    missing = [name for name in wanted if name not in found]
    if missing:
        raise SchemaError(
            f"{where}: collection {collection.name!r} lacks the indexes {missing}; run "
            "`triggers --backend mongo --option url=... schema create` or "
            "MongoStorageBackend.create_schema(...)"
        )
    return [f"{collection.name}: index {name}" for name in sorted(found)]


def session_uids(options: Mapping[str, Any]) -> list[str]:
    """Every saved session's uid (headers of at least one save)."""
    target = config.Target.of(options)
    with driver_errors("list the sessions", target.where):
        headers = {"seq": layout.SEQ_HEADER, "version": {"$gte": 1}}
        return [header["_id"] for header in target.collection.find(headers, {"_id": 1})]
