"""The shared conformance suite, with and without multi-document transactions.

SecantusDB runs transactions, so both save paths are tested for real on it:
``transactions="on"`` (one transaction per save) and ``"off"`` (the commit
protocol alone, as on a standalone ``mongod``).
"""

from __future__ import annotations

from typing import Any

import pytest

from triggers.storage import TriggerStorageBackend
from triggers_conformance import BackendConformance, StorageFactory
from triggers_mongo import MongoStorageBackend


class TestMongoBackend(BackendConformance):
    @pytest.fixture(params=["auto", "off"])
    def make_storage(
        self, request: pytest.FixtureRequest, mongo_url: str, mongo_database: str
    ) -> StorageFactory:
        transactions = request.param

        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return MongoStorageBackend(
                uid,
                url=mongo_url,
                database=mongo_database,
                collection=f"conformance_{transactions}",
                transactions=transactions,
                **options,
            )

        return make
