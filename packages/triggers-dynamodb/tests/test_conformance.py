"""The shared conformance suite on a DynamoDB-API server (moto by default)."""

from __future__ import annotations

from typing import Any

import pytest
from dynamodb_raw_store import DynamoDBRawStore

from triggers.storage import TriggerStorageBackend
from triggers_conformance import BackendConformance, RawStore, StorageFactory
from triggers_dynamodb import DynamoDBStorageBackend


class TestDynamoDBBackend(BackendConformance):
    bad_options = [
        ({"ttl": 60}, "ttl is now named session_ttl"),
        ({"create_table": "yes"}, "create_table"),
    ]

    @pytest.fixture
    def make_storage(self, dynamodb: Any) -> StorageFactory:
        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return DynamoDBStorageBackend(uid, **dynamodb.options, **options)

        return make

    @pytest.fixture
    def raw_store(self, dynamodb: Any) -> RawStore:
        return DynamoDBRawStore(dynamodb.options)
