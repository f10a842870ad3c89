"""The suite against a third-party backend that uses the optional hooks.

Sessions are JSON files; a lock file guarded by ``flock`` holds the lease
(token and expiry), so the lock excludes other processes on this machine, and
every save checks both the lease token and the stored version under the same
``flock`` (fencing). This exercises the cross-process parts of the suite with
nothing but the standard library.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from triggers.capabilities import Capabilities
from triggers.errors import StaleSessionError
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend
from triggers_conformance import BackendConformance, StorageFactory


def _write_atomically(path: Path, text: str) -> None:
    """Replace ``path`` with ``text`` in one step: a reader (or a process killed
    mid-write) never leaves a truncated file behind, only the old or the new one."""
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


class LeasedFileBackend(TriggerStorageBackend):
    """One JSON file per session, with a version, plus a lease file."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        shared_state=True, cross_process_locking=True, fenced_saves=True
    )

    def __init__(self, uid: str, *, directory: Path, **options: Any) -> None:
        super().__init__(uid, **options)
        stem = directory / hashlib.sha256(uid.encode()).hexdigest()
        self.data_path = stem.with_suffix(".json")
        self.lease_path = stem.with_suffix(".lease")
        self.guard_path = stem.with_suffix(".guard")

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """Exclusive access to this session's files, across processes."""
        with self.guard_path.open("a") as guard:
            fcntl.flock(guard, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(guard, fcntl.LOCK_UN)

    def _read_lease(self) -> dict[str, Any] | None:
        try:
            lease: dict[str, Any] = json.loads(self.lease_path.read_text())
        except FileNotFoundError:
            return None
        return lease

    def _read_document(self) -> dict[str, Any]:
        try:
            document: dict[str, Any] = json.loads(self.data_path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return {"version": None, "tasks": {}, "instances": {}, "metadata": {}}
        return document

    def _load_session(self, scope: LoadScope) -> StoredSession:
        with self._guarded():
            document = self._read_document()
        return StoredSession(
            document["tasks"], document["instances"], document["metadata"], version=document["version"]
        )

    def _save_changes(self, changes: SessionChanges) -> None:
        document = {
            "version": changes.new_version,
            "tasks": self._serialize(self._configs),
            "instances": self._serialize(self._instances),
            "metadata": self._serialize(self._metas),
        }
        with self._guarded():
            lease = self._read_lease()
            if lease is None or lease["token"] != changes.lease.token:
                raise StaleSessionError(f"session {self.uid!r}: lease was taken over")
            if self._read_document()["version"] != changes.base_version:
                raise StaleSessionError(f"session {self.uid!r}: stored version moved on")
            _write_atomically(self.data_path, json.dumps(document))

    def _acquire_lease(self, lease: Lease) -> bool:
        with self._guarded():
            current = self._read_lease()
            if current and current["token"] != lease.token and current["expires_at"] > self.clock():
                return False
            _write_atomically(
                self.lease_path,
                json.dumps({"token": lease.token, "expires_at": lease.expires_at}),
            )
            return True

    def _renew_lease(self, lease: Lease) -> bool:
        with self._guarded():
            current = self._read_lease()
            if current is None or current["token"] != lease.token:
                return False  # taken over (and maybe released) by another holder
            _write_atomically(
                self.lease_path,
                json.dumps({"token": lease.token, "expires_at": lease.expires_at}),
            )
            return True

    def _release_lease(self, lease: Lease) -> None:
        with self._guarded():
            current = self._read_lease()
            if current and current["token"] == lease.token:
                self.lease_path.unlink()


class TestLeasedFileBackend(BackendConformance):
    @pytest.fixture
    def make_storage(self, tmp_path: Path) -> StorageFactory:
        def make(uid: str, **options: Any) -> TriggerStorageBackend:
            return LeasedFileBackend(uid, directory=tmp_path, **options)

        return make
