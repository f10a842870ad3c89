"""The storage page's example backend, and the conformance suite run on it.

``docs/storage.md`` includes the two sections below; pytest collects this file
from ``docs/`` and runs the whole conformance suite against the backend, so
the page's claim that two methods are enough is checked in CI.
"""

from __future__ import annotations

# --8<-- [start:backend]
import hashlib
import json
from pathlib import Path
from typing import Any

from triggers import TriggerStorageBackend


class JsonFileBackend(TriggerStorageBackend):
    """Each session as one JSON file in ``directory``."""

    def __init__(self, uid: str, *, directory: str | Path, **options: Any) -> None:
        super().__init__(uid, **options)  # lease_ttl, lock_timeout, clock
        folder = Path(directory)
        folder.mkdir(parents=True, exist_ok=True)
        self.path = folder / (hashlib.sha256(uid.encode()).hexdigest() + ".json")

    def _load_from_backend(self) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
        try:
            document = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {}, {}, {}  # a new session
        return document["tasks"], document["instances"], document["metadata"]

    def _save(self) -> None:
        document = {
            "tasks": self._serialize(self._configs),
            "instances": self._serialize(self._instances),
            "metadata": self._serialize(self._metas),
        }
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps(document), encoding="utf-8")
        temporary.replace(self.path)  # atomic: readers see the old file or the new one
# --8<-- [end:backend]


# --8<-- [start:conformance]
import pytest

from triggers_conformance import BackendConformance


class TestJsonFileBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> Any:
        def make(uid: str, **options: Any) -> JsonFileBackend:
            return JsonFileBackend(uid, directory=tmp_path, **options)

        return make
# --8<-- [end:conformance]
