"""Raw access to the triggers-mongo collections of one prefix, for tests that damage stored data.

Used by this package's conformance tests (the suite's ``raw_store`` hook) and
by the reliability suite's corruption scenario, which imports it from here:
the knowledge of the backend's stored layout stays next to the backend.
"""

from __future__ import annotations

from typing import Any

from triggers_conformance.damage import GARBAGE

__all__ = ["MongoRawStore"]


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
