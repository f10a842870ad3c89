"""The in-memory backend (entry point ``memory``): the reference implementation.

Sessions live in a dict of this process, so they vanish with it and other
processes never see them. It exists for tests, examples and documentation,
and as the model of a backend built on a :class:`~triggers.stores.Store`:
:class:`MemoryStore` implements every session operation a native backend
does (a versioned partial load, an incremental save fenced by version and
lease, or for an optimistic save by version and the absence of a live lease,
and leases, process-local here), and :class:`MemoryStorageBackend` is the
three lines that name it.

Records are kept as JSON text, exactly as a networked store would hold them,
so nothing a caller still references can change a stored session behind the
backend's back. A load hands that text over as it is (:class:`StoredText`),
so the base class parses only what it needs: a fire never touches the
finished history, and loading a whole session decodes none of it until read.

Configuration::

    storage_backends.get("memory", uid)                  # the default store
    storage_backends.get("memory", uid, namespace="a")   # an isolated store

``namespace`` (default ``"default"``)
    Sessions with the same uid in different namespaces are unrelated, like
    two databases. Tests use a namespace each.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, StaleSessionError
from triggers.locking import LOCAL_LEASES, Lease
from triggers.storage import (
    RECORD_KINDS,
    LoadScope,
    SessionChanges,
    StoredSession,
    StoredText,
)
from triggers.stores import Store, StoreStorageBackend

__all__ = ["MemoryStorageBackend", "MemoryStore"]


@dataclass
class _StoredState:
    version: int = 0
    configs: dict[str, StoredText] = field(default_factory=dict)
    instances: dict[str, StoredText] = field(default_factory=dict)
    active: set[str] = field(default_factory=set)
    metadata: dict[str, StoredText] = field(default_factory=dict)


@dataclass
class _Namespace:
    mutex: threading.Lock = field(default_factory=threading.Lock)
    sessions: dict[str, _StoredState] = field(default_factory=dict)


_NAMESPACES: dict[str, _Namespace] = {}
_NAMESPACES_MUTEX = threading.Lock()


def _namespace(name: str) -> _Namespace:
    with _NAMESPACES_MUTEX:
        return _NAMESPACES.setdefault(name, _Namespace())


class MemoryStore(Store):
    """One namespace of sessions in this process's memory (see the module docstring)."""

    capabilities = Capabilities(
        fenced_saves=True,
        optimistic_saves=True,
        incremental_saves=True,
        partial_loads=True,
    )
    driver_errors = ()  # no driver: any exception here is a bug, and propagates as one

    def __init__(self, *, namespace: str = "default", **options: Any) -> None:
        super().__init__(**options)
        if not isinstance(namespace, str):
            raise ConfigurationError(f"namespace must be a str, not {type(namespace).__name__}")
        self.namespace = namespace
        self._sessions = _namespace(namespace)

    def describe(self) -> str:
        return f"memory namespace {self.namespace!r}"

    def session_uids(self) -> Iterator[str]:
        """The uids of the sessions stored in the namespace, in sorted order."""
        with self._sessions.mutex:
            uids = sorted(self._sessions.sessions)
        yield from uids

    def lease_key(self, uid: str) -> Hashable:
        """The session's key in the process-local lease table."""
        return ("memory", self.namespace, uid)

    def take_lease(self, uid: str, lease: Lease) -> bool:
        return LOCAL_LEASES.try_acquire(self.lease_key(uid), lease, lease.acquired_at)

    def renew_lease(self, uid: str, lease: Lease) -> bool:
        return LOCAL_LEASES.renew(self.lease_key(uid), lease)

    def release_lease(self, uid: str, lease: Lease) -> None:
        LOCAL_LEASES.release(self.lease_key(uid), lease.token)

    def load(self, uid: str, scope: LoadScope) -> StoredSession:
        with self._sessions.mutex:
            state = self._sessions.sessions.get(uid)
            if state is None:
                return StoredSession({}, {}, {}, version=None)
            if scope < LoadScope.FULL:
                instances = {name: state.instances[name] for name in state.active}
            else:
                instances = dict(state.instances)
            return StoredSession(
                configs=dict(state.configs),
                instances=instances,
                metadata=dict(state.metadata),
                version=state.version,
                complete=scope >= LoadScope.FULL,
            )

    def write(self, uid: str, changes: SessionChanges) -> None:
        # Serialize outside the mutex (the base class did, in *_texts); then
        # check the fence and apply in one critical section, which is what
        # makes the save atomic.
        by_kind: dict[str, dict[str, StoredText]] = {kind: {} for kind in RECORD_KINDS}
        for row in changes.rows():
            by_kind[row.kind][row.name] = StoredText(row.text, resolved=not row.active)
        configs, instances, metadata = (by_kind[kind] for kind in RECORD_KINDS)
        with self._sessions.mutex:
            self._check_fence(uid, changes)
            state = self._sessions.sessions.get(uid)
            if state is None:
                state = self._sessions.sessions[uid] = _StoredState()
            state.configs.update(configs)
            state.instances.update(instances)
            for name, record in instances.items():
                if record.resolved:
                    state.active.discard(name)
                else:
                    state.active.add(name)
            state.metadata.update(metadata)
            for key in changes.deleted_metadata:
                state.metadata.pop(key, None)
            state.version = changes.new_version

    def _check_fence(self, uid: str, changes: SessionChanges) -> None:
        """Refuse a save whose lease was taken over, that meets a live lease
        (optimistic), or whose loaded version is not the stored one."""
        key = self.lease_key(uid)
        if changes.lease is None:
            now = time.time() if changes.written_at is None else changes.written_at
            if LOCAL_LEASES.live_holder(key, now) is not None:
                raise StaleSessionError.leased(uid)
        elif not LOCAL_LEASES.holds(key, changes.lease.token):
            raise StaleSessionError.lease_taken_over(uid)
        state = self._sessions.sessions.get(uid)
        stored_version = state.version if state is not None else None
        if stored_version != changes.base_version:
            raise StaleSessionError.version_moved(uid, changes.base_version, stored_version)


class MemoryStorageBackend(StoreStorageBackend):
    """Process-local, thread-safe session storage (see the module docstring)."""

    store_class = MemoryStore
    capabilities: ClassVar[Capabilities] = MemoryStore.capabilities
    store: MemoryStore

    @property
    def namespace(self) -> str:
        """The namespace this session lives in."""
        return self.store.namespace

    @classmethod
    def clear(cls, namespace: str | None = None) -> None:
        """Delete every session of ``namespace`` (or of every namespace)."""
        with _NAMESPACES_MUTEX:
            names = list(_NAMESPACES) if namespace is None else [namespace]
            stores = [_NAMESPACES[name] for name in names if name in _NAMESPACES]
        for store in stores:
            with store.mutex:
                store.sessions.clear()


