"""The conformance suite, and the key-value layout's own rules, on the dict-backed reference store."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from triggers.keyvalue import DictStorageBackend
from triggers.storage import TriggerStorageBackend
from triggers_conformance import BackendConformance, KeyValueConformance, StorageFactory


@pytest.fixture
def make_dict_storage() -> StorageFactory:
    namespace = f"conformance-{uuid.uuid4().hex}"

    def make(uid: str, **options: Any) -> TriggerStorageBackend:
        return DictStorageBackend(uid, namespace=namespace, **options)

    return make


class TestDictStore(BackendConformance):
    @pytest.fixture
    def make_storage(self, make_dict_storage: StorageFactory) -> StorageFactory:
        return make_dict_storage


class TestDictStoreLayout(KeyValueConformance):
    @pytest.fixture
    def make_storage(self, make_dict_storage: StorageFactory) -> StorageFactory:
        return make_dict_storage
