"""The in-memory backend (entry point ``memory``): the reference implementation.

Sessions live in a dict of this process, so they vanish with it and other
processes never see them. It exists for tests, examples and documentation,
and as the model of every optional hook a native backend implements: a
versioned partial load, an incremental save fenced by version and lease (or,
for an optimistic save, by version and the absence of a live lease), and
leases (process-local here).

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
from collections.abc import Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, ClassVar

from triggers import values
from triggers.capabilities import Capabilities
from triggers.errors import StaleSessionError
from triggers.locking import LOCAL_LEASES
from triggers.storage import (
    LoadScope,
    SessionChanges,
    StoredSession,
    StoredText,
    TriggerStorageBackend,
    is_active_record,
)

__all__ = ["MemoryStorageBackend"]


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


class MemoryStorageBackend(TriggerStorageBackend):
    """Process-local, thread-safe session storage (see the module docstring)."""

    capabilities: ClassVar[Capabilities] = Capabilities(
        fenced_saves=True,
        optimistic_saves=True,
        incremental_saves=True,
        partial_loads=True,
    )

    def __init__(self, uid: str, *, namespace: str = "default", **options: Any) -> None:
        super().__init__(uid, **options)
        self.namespace = namespace
        self._store = _namespace(namespace)

    @classmethod
    def clear(cls, namespace: str | None = None) -> None:
        """Delete every session of ``namespace`` (or of every namespace)."""
        with _NAMESPACES_MUTEX:
            names = list(_NAMESPACES) if namespace is None else [namespace]
            stores = [_NAMESPACES[name] for name in names if name in _NAMESPACES]
        for store in stores:
            with store.mutex:
                store.sessions.clear()

    @classmethod
    def session_uids(cls, *, namespace: str = "default", **options: Any) -> Iterator[str]:
        """The uids of the sessions stored in ``namespace``, in sorted order."""
        store = _namespace(namespace)
        with store.mutex:
            uids = sorted(store.sessions)
        yield from uids

    def _lease_key(self) -> Hashable:
        return ("memory", self.namespace, self.uid)

    def _load_session(self, scope: LoadScope) -> StoredSession:
        with self._store.mutex:
            state = self._store.sessions.get(self.uid)
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

    def _save_changes(self, changes: SessionChanges) -> None:
        # Serialize outside the mutex (the base class did, in *_texts); then
        # check the fence and apply in one critical section, which is what
        # makes the save atomic.
        configs = {
            name: StoredText(_text(record, changes.config_texts.get(name)))
            for name, record in changes.configs.items()
        }
        instances = {
            name: StoredText(
                _text(record, changes.instance_texts.get(name)), resolved=not is_active_record(record)
            )
            for name, record in changes.instances.items()
        }
        metadata = {
            key: StoredText(_text(value, changes.metadata_texts.get(key)))
            for key, value in changes.metadata.items()
        }
        with self._store.mutex:
            if changes.lease is None:
                if LOCAL_LEASES.live_holder(self._lease_key(), self.clock()) is not None:
                    raise StaleSessionError(
                        f"session {self.uid!r} is locked by a lease holder; this optimistic "
                        "save was refused and nothing was written"
                    )
            elif not LOCAL_LEASES.holds(self._lease_key(), changes.lease.token):
                raise StaleSessionError(
                    f"session {self.uid!r}: the lease was taken over by another holder; "
                    "this save was refused and nothing was written"
                )
            state = self._store.sessions.get(self.uid)
            stored_version = state.version if state is not None else None
            if stored_version != changes.base_version:
                raise StaleSessionError(
                    f"session {self.uid!r}: stored version is {stored_version}, this holder "
                    f"loaded {changes.base_version}; nothing was written"
                )
            if state is None:
                state = self._store.sessions[self.uid] = _StoredState()
            state.configs.update(configs)
            state.instances.update(instances)
            for name, stored in instances.items():
                if stored.resolved:
                    state.active.discard(name)
                else:
                    state.active.add(name)
            state.metadata.update(metadata)
            for key in changes.deleted_metadata:
                state.metadata.pop(key, None)
            state.version = changes.new_version


def _text(record: values.JSONValue, text: str | None) -> str:
    """A changed record's canonical JSON: as the base class computed it, if it did."""
    return values.canonical_json(record) if text is None else text
