"""The shared conformance suite on every database the sql backend supports."""

from __future__ import annotations

from typing import Any

import pytest
from sql_raw_store import SQLRawStore

from triggers.storage import TriggerStorageBackend
from triggers_conformance import BackendConformance, RawStore, StorageFactory
from triggers_sql import SQLStorageBackend


class TestSQLBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, database: Any) -> StorageFactory:
        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return SQLStorageBackend(uid, **database.options, **options)

        return make

    @pytest.fixture
    def raw_store(self, database: Any) -> RawStore:
        return SQLRawStore(database.options)
