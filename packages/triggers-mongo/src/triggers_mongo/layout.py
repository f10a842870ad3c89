"""The documents and indexes of the mongo backend.

Two collections per prefix (default ``triggers``):

``triggers_sessions``: one *header* per session::

    {"_id": uid, "version": 7, "writer": "<save token>", "settled": 7,
     "lease_token": "<token>" | None, "lease_expires": 1764000000.0,
     "lease_session": {"id": UUID} | None,   # the holder's logical session id
     "expires_at": datetime, "items_expire_at": datetime}   # the last two with ttl=

``triggers_items``: one document per task config, task instance and
metadata key, and per version of it while a save is in flight::

    {"session": uid, "kind": "task" | "instance" | "metadata", "name": name,
     "version": 7, "writer": "<save token>", "committed": True, "active": True,
     "deleted": False, "record": "<canonical JSON text>", "expires_at": datetime}

Every field *name* is ours: uids, names, kwargs and metadata keys only ever
appear as *values* (``record`` is JSON text), so ``$``, ``.``, empty and NUL
keys round-trip and can never be read as operators or paths.

An item document is part of the session's state when it is **committed**:
either ``committed`` is true, or it was written by the save that produced the
header's current version (``version == header.version`` and ``writer ==
header.writer``). For each (kind, name) the committed document of the highest
version wins; a ``deleted`` one is a tombstone (a metadata key removed).
Documents of any other save (in flight, refused, or abandoned by a crash) are
ignored by readers and removed later.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from pymongo import ASCENDING, IndexModel

__all__ = [
    "ITEM_INDEXES",
    "KINDS",
    "KIND_INSTANCE",
    "KIND_METADATA",
    "KIND_TASK",
    "TTL_INDEX",
    "Collections",
    "collection_names",
    "current_items",
    "is_committed",
]

KIND_TASK = "task"
KIND_INSTANCE = "instance"
KIND_METADATA = "metadata"
KINDS = (KIND_TASK, KIND_INSTANCE, KIND_METADATA)

ITEM_INDEXES = [
    # Loads: a fire asks for {session, active: True}; a full load for {session}.
    IndexModel([("session", ASCENDING), ("active", ASCENDING)], name="session_active"),
    # Settling a save: older copies of the items it changed.
    IndexModel(
        [("session", ASCENDING), ("kind", ASCENDING), ("name", ASCENDING), ("version", ASCENDING)],
        name="session_item",
    ),
]

TTL_INDEX = IndexModel([("expires_at", ASCENDING)], name="expires_at", expireAfterSeconds=0)
"""Documents expire at their own ``expires_at`` (written only when ``ttl=`` is set)."""


@dataclass(frozen=True)
class Collections:
    """Names of the two collections for one prefix."""

    sessions: str
    items: str


def collection_names(prefix: str) -> Collections:
    return Collections(sessions=f"{prefix}_sessions", items=f"{prefix}_items")


def is_committed(item: Mapping[str, Any], version: int | None, writer: str | None) -> bool:
    """True if ``item`` belongs to the state of a header at ``version`` by ``writer``."""
    if version is None or item.get("version", 0) > version:
        return False
    if item.get("committed") is True:
        return True
    return item.get("version") == version and writer is not None and item.get("writer") == writer


def current_items(
    items: Iterable[Mapping[str, Any]], version: int | None, writer: str | None
) -> dict[tuple[str, str], Mapping[str, Any]]:
    """The winning committed document of each (kind, name); tombstones removed."""
    latest: dict[tuple[str, str], Mapping[str, Any]] = {}
    for item in items:
        if not is_committed(item, version, writer):
            continue
        key = (item["kind"], item["name"])
        known = latest.get(key)
        if known is None or item["version"] > known["version"]:
            latest[key] = item
    return {key: item for key, item in latest.items() if not item.get("deleted")}
