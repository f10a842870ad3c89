"""The shared conformance suite, with and without multi-document transactions.

SecantusDB runs transactions, so both save paths are tested for real on it:
``transactions="on"`` (one transaction per save) and ``"off"`` (the commit
protocol alone, as on a standalone ``mongod``).
"""

from __future__ import annotations

from typing import Any

import pytest
from mongo_raw_store import MongoRawStore

from triggers.storage import TriggerStorageBackend
from triggers_conformance import BackendConformance, RawStore, StorageFactory
from triggers_mongo import MongoStorageBackend


class TestMongoBackend(BackendConformance):
    bad_options = [
        ({"session_ttl": 0}, "session_ttl must be a finite number"),
        ({"session_ttl": float("inf")}, "session_ttl must be a finite"),
        ({"session_ttl": float("nan")}, "session_ttl must be a finite"),
        ({"session_ttl": True}, "session_ttl must be a finite"),
        ({"session_ttl": 1e11}, "session_ttl must be at most"),
        ({"ttl": 60}, "ttl is now named session_ttl"),
        ({"colection": "x"}, "MongoStore takes no option named colection"),
    ]

    @pytest.fixture(params=["auto", "off"])
    def conformance_options(
        self, request: pytest.FixtureRequest, mongo_url: str, mongo_database: str
    ) -> dict[str, Any]:
        transactions = request.param
        return {
            "url": mongo_url,
            "database": mongo_database,
            "collection": f"conformance_{transactions}",
            "transactions": transactions,
        }

    @pytest.fixture
    def make_storage(self, conformance_options: dict[str, Any]) -> StorageFactory:
        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return MongoStorageBackend(uid, **conformance_options, **options)

        return make

    @pytest.fixture
    def raw_store(self, conformance_options: dict[str, Any]) -> RawStore:
        return MongoRawStore(conformance_options)
