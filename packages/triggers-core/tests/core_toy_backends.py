"""Small backends and a clock for the triggers-core tests.

``DictBackend`` is the documented two-method backend: it keeps each session as
JSON text in a plain dict the test owns, so a test can look at exactly what was
(or was not) written, and plant garbage for a load to find.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from typing import Any, ClassVar

from triggers.capabilities import Capabilities
from triggers.memory import MemoryStorageBackend
from triggers.storage import SessionChanges, TriggerStorageBackend


class FakeClock:
    """A ``time.time`` stand-in that only moves when told to."""

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


class DictBackend(TriggerStorageBackend):
    """Two methods, as the documentation shows; ``store`` maps uid -> JSON text."""

    def __init__(self, uid: str, *, store: dict[str, str] | None = None, **options: Any) -> None:
        super().__init__(uid, **options)
        self.store: dict[str, str] = {} if store is None else store
        self.loads = 0
        self.saves = 0

    def _load_from_backend(self) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
        self.loads += 1
        text = self.store.get(self.uid)
        if text is None:
            return {}, {}, {}
        document = json.loads(text)
        return document["tasks"], document["instances"], document["metadata"]

    def _save(self) -> None:
        self.saves += 1
        self.store[self.uid] = json.dumps(
            {
                "tasks": self._serialize(self._configs),
                "instances": self._serialize(self._instances),
                "metadata": self._serialize(self._metas),
            }
        )


class LimitedDictBackend(DictBackend):
    capabilities: ClassVar[Capabilities] = Capabilities(max_record_bytes=300)


class ShortUidDictBackend(DictBackend):
    capabilities: ClassVar[Capabilities] = Capabilities(max_uid_length=8)


class SlowLeaseDictBackend(DictBackend):
    capabilities: ClassVar[Capabilities] = Capabilities(min_lease_seconds=1.0)


class DriverFailure(ConnectionError):
    """What a database driver raises when the server goes away."""


class BrokenDictBackend(DictBackend):
    """Fails the way a driver does, in whichever hook ``fail_in`` names."""

    def __init__(self, uid: str, *, fail_in: str, **options: Any) -> None:
        super().__init__(uid, **options)
        self.fail_in = fail_in

    def _load_from_backend(self) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
        if self.fail_in == "load":
            raise DriverFailure("server closed the connection")
        return super()._load_from_backend()

    def _save(self) -> None:
        if self.fail_in == "save":
            raise DriverFailure("server closed the connection")
        super()._save()


class RecordingMemoryBackend(MemoryStorageBackend):
    """An incremental backend that remembers every ``SessionChanges`` it was given."""

    def __init__(self, uid: str, **options: Any) -> None:
        super().__init__(uid, **options)
        self.changes: list[SessionChanges] = []

    def _save_changes(self, changes: SessionChanges) -> None:
        self.changes.append(changes)
        super()._save_changes(changes)


class LimitedMemoryBackend(RecordingMemoryBackend):
    """The incremental backend with a per-record limit: a failure record fits, a
    record holding a result of ``2 * max_record_bytes`` characters does not."""

    capabilities: ClassVar[Capabilities] = replace(
        MemoryStorageBackend.capabilities, max_record_bytes=8000
    )


class FailingMemoryBackend(RecordingMemoryBackend):
    """Saves normally until ``saves_allowed`` saves went through, then fails every
    later save the way a driver does (``None``: never fails)."""

    def __init__(self, uid: str, *, saves_allowed: int | None = None, **options: Any) -> None:
        super().__init__(uid, **options)
        self.saves_allowed = saves_allowed
        self.failed_saves = 0

    def _save_changes(self, changes: SessionChanges) -> None:
        if self.saves_allowed is not None and len(self.changes) >= self.saves_allowed:
            self.failed_saves += 1
            raise DriverFailure("server closed the connection")
        super()._save_changes(changes)
