"""Conformance of any installed backend, with no code to write::

    pytest --pyargs triggers_conformance --triggers-backend NAME --triggers-option key=value
"""

from __future__ import annotations

from typing import Any

import pytest

from triggers.registry import storage_backends
from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import StorageFactory
from triggers_conformance.plugin import selected_backend
from triggers_conformance.suite import BackendConformance


class TestInstalledBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, pytestconfig: pytest.Config) -> StorageFactory:
        name, options = selected_backend(pytestconfig)
        if not name:
            pytest.skip("no backend selected: pass --triggers-backend NAME (or set TRIGGERS_STORAGE_BACKEND)")

        def make(uid: str, **extra: Any) -> TriggerStorageBackend:
            return storage_backends.get(name, uid, **{**options, **extra})

        return make
