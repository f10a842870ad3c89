"""The suite against a backend written the way a third party would: two methods.

It keeps each session as one JSON file and implements only the documented
``_load_from_backend`` and ``_save``; everything else (locking within the
process, validation, change tracking) comes from the base class. Its limits
are declared so the suite probes them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, ClassVar

import pytest

from triggers.capabilities import Capabilities
from triggers.storage import TriggerStorageBackend
from triggers_conformance import BackendConformance, StorageFactory


class JsonFileBackend(TriggerStorageBackend):
    """One JSON file per session in ``directory``."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True, max_uid_length=300, max_record_bytes=64_000, max_session_bytes=1_000_000
    )

    def __init__(self, uid: str, *, directory: Path, **options: Any) -> None:
        super().__init__(uid, **options)
        self.path = directory / (hashlib.sha256(uid.encode()).hexdigest() + ".json")

    def _load_from_backend(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, {}, {}
        return document["tasks"], document["instances"], document["metadata"]

    def _save(self) -> None:
        document = {
            "tasks": self._serialize(self._configs),
            "instances": self._serialize(self._instances),
            "metadata": self._serialize(self._metas),
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        temporary.replace(self.path)  # atomic: a reader sees the old or the new file


class TestTwoMethodBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return JsonFileBackend(uid, directory=tmp_path, **options)

        return make
