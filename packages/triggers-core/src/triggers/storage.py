"""The base storage backend: session state, its validation and its locking.

:class:`TriggerStorageBackend` holds everything that is the same on every
store: the session-state API the manager uses, the value-domain checks, change
tracking, size limits, and the lock-then-fence protocol. A backend only says
how to read, write and lock on its store.

Writing a backend
=================

The two documented methods are enough (and keep working unchanged)::

    class JsonFileBackend(TriggerStorageBackend):
        def _load_from_backend(self):
            try:
                document = json.loads(self.path.read_text())
            except FileNotFoundError:
                return {}, {}, {}
            return document["tasks"], document["instances"], document["metadata"]

        def _save(self):
            self.path.write_text(json.dumps({
                "tasks": self._serialize(self._configs),
                "instances": self._serialize(self._instances),
                "metadata": self._serialize(self._metas),
            }))

Such a backend loads the whole session, rewrites it on every save, and is
locked by leases local to the process (safe across threads, not processes).

Native backends implement optional hooks instead, each independently:

``_load_session(scope) -> StoredSession``
    Load with a version number; for ``LoadScope.ACTIVE`` it may return only
    the unresolved instances (``complete=False``), which is what a fire needs.
    A store that holds each record as the text it was given may return that
    text unparsed (:class:`StoredText`): the base class then decodes finished
    instances only when something reads them.
``_save_changes(changes: SessionChanges)``
    Write only what changed, in one atomic write, conditioned on
    ``changes.base_version`` (and on ``changes.lease.token`` where the store
    can check it in the same write); raise :class:`StaleSessionError` when the
    condition fails. Required when ``_load_session`` can return partial loads.
    A backend that declares ``Capabilities(optimistic_saves=True)`` also
    receives *optimistic* change sets, ``changes.lease is None``: the write is
    then conditioned on the version and on no live lease being held, in the
    same atomic write.
    The canonical JSON text of every changed record comes with it
    (``changes.instance_texts`` and its siblings), ready to write.
``_acquire_lease(lease) -> bool``, ``_renew_lease(lease) -> bool``,
``_release_lease(lease)``
    A lock native to the store, excluding other processes and machines. A
    release or renewal must only touch the lease if its token is still
    ``lease.token``.
``_close()``
    Release per-session resources (never the process-wide connection pool).

Any exception a hook raises that is not a :class:`TriggersError` reaches the
caller as a :class:`StorageError` naming the uid, with the driver error as
``__cause__``.

Two ways to change a session
============================

``with storage.acquire_lock(): ...; storage.save()`` holds a lease for as
long as the block runs: for long critical sections, and the only way on
backends without conditional writes.

:meth:`TriggerStorageBackend.transact` is what the manager uses for every
fire and status change. On a backend with ``optimistic_saves`` it takes no
lease: it loads (one round trip), applies the change in memory, and saves it
with one write conditioned on the loaded version and on nobody holding a
lease. When that write is refused (another writer was first, or a lock holder
is at work) it reloads and applies the change again, waiting a jittered,
growing delay between attempts, for at most ``lock_timeout`` seconds
(then :class:`~triggers.errors.ContentionError`). A lease holder is never
overwritten by an optimistic writer, nor the other way round: each write is
fenced on the version, and an optimistic write also on the lease.

Each optimistic write carries a random token, kept among the session's
``recentWrites`` (metadata). When the store fails without saying whether a
write landed (a connection lost while committing), the session is read again:
finding the token there means the write landed, and the change is not
applied a second time; not finding it means nothing was written, and the
store's error is raised.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import math
import secrets
import threading
import time
from collections.abc import (
    Callable,
    Hashable,
    ItemsView,
    Iterator,
    Mapping,
    MutableMapping,
    ValuesView,
)
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from enum import IntEnum
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar, cast

from triggers import observability, values
from triggers.capabilities import Capabilities
from triggers.errors import (
    ConfigurationError,
    ContentionError,
    CorruptSessionError,
    InstanceNotFoundError,
    LeaseExpiredError,
    LockNotHeldError,
    LockTimeoutError,
    SessionLimitError,
    StaleSessionError,
    StorageError,
    TriggersError,
    ValueDomainError,
    hide_passwords,
)
from triggers.locking import LOCAL_LEASES, Clock, Lease, backoff_delays, poll_until
from triggers.types import RESOLVED_STATUSES, InstanceStatus, TaskConfig, TaskInstance

__all__ = [
    "RECORD_KINDS",
    "ChangedRecord",
    "LoadScope",
    "SessionChanges",
    "StoredSession",
    "StoredText",
    "TriggerStorageBackend",
    "is_active_record",
]

logger = logging.getLogger(__name__)

_T = TypeVar("_T")

StoredRecord = dict[str, values.JSONValue]
"""A task config or task instance in its stored form (``to_mapping()``)."""

INSTANCE_COUNTS_KEY = "instanceCounts"
"""Session metadata key holding the next instance number of each task.

Kept in metadata (rather than counted from the instances) so that a partial
load, which never sees finished instances, still names new instances right.
"""


TRIGGER_KWARGS_KEY = "triggerKwargs"
"""Session metadata key holding the latest kwargs of every trigger fired so far."""

RECENT_WRITES_KEY = "recentWrites"
"""Session metadata key holding the tokens of the latest optimistic writes, oldest first.

How :meth:`TriggerStorageBackend.transact` tells, after a write whose reply
was lost, whether that write landed (see the module docstring).
"""

TRANSIENT_RETRY_SECONDS = 2.0
"""How long a repeatable backend call is retried after transient driver errors
outside a lock wait (inside one, the wait's own bound applies)."""

RETRY_FIRST_DELAY = 0.001
RETRY_MAX_DELAY = 0.025
"""Seconds between optimistic attempts: from 1 ms, doubling, to 25 ms, jittered.

Shorter than the lock's polling (up to 100 ms): a refused attempt usually
means another writer just finished, so the session is free again at once; a
long wait would leave the store idle while writers sleep.
"""

RECENT_WRITES_KEPT = 16
"""Tokens kept in ``recentWrites``: a write is recognised as long as fewer
than this many others landed after it."""


class LoadScope(IntEnum):
    """How much of a session a load must return."""

    NONE = 0
    ACTIVE = 1
    """Task configs, metadata and the unresolved instances (enough for a fire)."""
    FULL = 2
    """Everything, finished history included."""


@dataclass(frozen=True, slots=True)
class StoredText:
    """A stored record (or metadata value) handed over as the text the backend holds.

    ``text`` must be the canonical JSON text the base class gave the backend
    to write (``SessionChanges.instance_texts`` and its siblings, which is
    :func:`triggers.values.canonical_json` of the record). Backends that keep
    text can return it as is instead of parsing it: the base class parses it
    itself, in one pass with the decoding, and uses the text as the record's
    change baseline without encoding the record again.

    ``resolved`` is for instance records: True when the instance is resolved
    (``not is_active_record(record)``, its status is final). Such a record is
    finished history, which no fire needs, so it is decoded only when
    something reads it: loading a session of 10,000 finished instances then
    decodes none of them, and a save skips every record that was never read
    (it cannot have changed). Stored text that cannot be decoded raises
    :class:`CorruptSessionError` when the record is first read, and is left
    untouched.
    """

    text: str
    resolved: bool = False


@dataclass(frozen=True)
class StoredSession:
    """What :meth:`TriggerStorageBackend._load_session` returns.

    ``configs`` and ``instances`` map names to stored records; ``metadata``
    maps top-level keys, escaped like every stored dict key (``"$x"`` as
    ``"$$x"``, see :func:`triggers.values.escape_key`), to encoded values. ``version`` is the stored version
    (``None`` if the backend keeps none, or the session does not exist yet).
    ``complete`` is False when only active instances were loaded.

    A record is a mapping (the stored form, as JSON data), a
    :class:`TaskConfig` or :class:`TaskInstance` object, or a
    :class:`StoredText`; a metadata value is JSON data or a :class:`StoredText`.
    """

    configs: Mapping[str, Any]
    instances: Mapping[str, Any]
    metadata: Mapping[str, Any]
    version: int | None = None
    complete: bool = True


RECORD_KINDS = ("task", "instance", "metadata")
"""The kinds of record a session holds, as :meth:`SessionChanges.rows` and
error messages name them: task configurations, task instances, metadata values."""


@dataclass(frozen=True)
class ChangedRecord:
    """One record a save writes (see :meth:`SessionChanges.rows`)."""

    kind: str
    """One of :data:`RECORD_KINDS`."""
    name: str
    """The task's or instance's name, or the metadata key (escaped)."""
    text: str
    """The record's canonical JSON."""
    active: bool
    """False only for an instance that is resolved (finished, failed, skipped...):
    what partial loads leave out (see :func:`is_active_record`)."""


@dataclass(frozen=True)
class SessionChanges:
    """What a save must write, computed by the base class.

    Records are in stored form, already validated against the value domain;
    metadata keys (and ``deleted_metadata``) are escaped as in :class:`StoredSession`.
    A backend writes them all or none, conditioned on ``base_version`` (the
    version it loaded: ``None`` means the session did not exist) and leaves
    the session at ``new_version``. ``lease`` is the lease of the holder
    saving; ``None`` for an optimistic save (only on backends that declare
    ``optimistic_saves``), which must also be refused while anyone holds a
    live lease.
    """

    uid: str
    base_version: int | None
    new_version: int
    lease: Lease | None
    configs: Mapping[str, StoredRecord] = field(default_factory=dict)
    instances: Mapping[str, StoredRecord] = field(default_factory=dict)
    metadata: Mapping[str, values.JSONValue] = field(default_factory=dict)
    deleted_metadata: frozenset[str] = frozenset()
    config_texts: Mapping[str, str] = field(default_factory=dict)
    """``values.canonical_json`` of each record of ``configs``, by the same
    names: the base class computed it to detect the change, so a backend that
    writes text need not encode the record again."""
    instance_texts: Mapping[str, str] = field(default_factory=dict)
    """``values.canonical_json`` of each record of ``instances``, by the same names."""
    metadata_texts: Mapping[str, str] = field(default_factory=dict)
    """``values.canonical_json`` of each value of ``metadata``, by the same (escaped) keys."""
    written_at: float | None = None
    """The writer's clock (seconds since the epoch) when the changes were
    collected. A store with no clock of its own judges by it whether a lease
    is still live; stores that have one (SQL ``now()``, a key's expiry) use theirs."""

    @property
    def is_empty(self) -> bool:
        return not (self.configs or self.instances or self.metadata or self.deleted_metadata)

    def rows(self) -> Iterator[ChangedRecord]:
        """Every changed record as its canonical JSON text, tasks first, then
        instances, then metadata values (``deleted_metadata`` aside): what a
        backend writes, in one vocabulary (:data:`RECORD_KINDS`). The text is
        the one the base class computed to detect the change (encoded now only
        for changes built by hand), so no record is encoded twice."""
        for name, config in self.configs.items():
            yield ChangedRecord("task", name, _text_of(config, self.config_texts.get(name)), True)
        for name, instance in self.instances.items():
            text = _text_of(instance, self.instance_texts.get(name))
            yield ChangedRecord("instance", name, text, is_active_record(instance))
        for key, value in self.metadata.items():
            yield ChangedRecord("metadata", key, _text_of(value, self.metadata_texts.get(key)), True)

    @property
    def is_optimistic(self) -> bool:
        """True for a save made without a lease (see ``optimistic_saves``)."""
        return self.lease is None

    @property
    def lease_token(self) -> str | None:
        """The token of the lease the save is fenced on; ``None`` for an optimistic save."""
        return None if self.lease is None else self.lease.token


def is_active_record(record: Mapping[str, Any]) -> bool:
    """True if a stored instance record is unresolved (belongs in an ACTIVE load).

    Backends use it to fill the column or attribute their partial loads index on.
    """
    return record.get("status", InstanceStatus.UNSTARTED) not in RESOLVED_STATUSES


@dataclass
class _Snapshot:
    """Canonical JSON of every record as loaded or last saved: the change baseline.

    A loaded record's baseline is its stored text (:class:`StoredText`) or
    the canonical JSON of the record as the backend returned it, never an
    encoding of the object decoded from it: that encoding would cost as much
    as the decoding again, for every record of every load. Comparing texts
    (rather than decoded values) is what sees a change from ``True`` to ``1``
    or from ``1`` to ``1.0``, all equal in Python. A record whose baseline is
    not the canonical JSON of the object (a stored record in an older form,
    say, with ``kwargs`` missing) is merely written once more in that form.
    """

    configs: dict[str, str] = field(default_factory=dict)
    instances: dict[str, str] = field(default_factory=dict)
    metadata: dict[str, str] = field(default_factory=dict)
    config_objects: dict[str, TaskConfig] = field(default_factory=dict)
    """The configs whose text in ``configs`` stands for them as long as they
    are the same object, which holds for a config nothing can change (see
    :func:`_unchangeable`): a save need not encode it again."""


class _InstanceTable(MutableMapping[str, TaskInstance]):
    """A session's task instances by name; finished history stays text until read.

    Entries are :class:`TaskInstance` objects or, for the resolved records a
    backend handed over as :class:`StoredText`, that text, decoded the first
    time the entry is read (and from then on the same object, so changes to
    it are kept and saved). Whatever reads instances through the mapping
    (``storage.instances``, ``values()``, ``items()``) sees only objects;
    :meth:`decoded` and :meth:`unresolved` are how the storage layer avoids
    decoding what it does not need. A dict keeps the load order, as before.
    """

    __slots__ = ("_configs", "_entries", "_mutex", "_pending", "_uid")

    def __init__(self, configs: Mapping[str, TaskConfig], uid: str) -> None:
        self._configs = configs  # the session's configs (the live dict): text is decoded with them
        self._uid = uid
        self._entries: dict[str, TaskInstance | StoredText] = {}
        self._pending = 0  # how many entries are still text
        self._mutex = threading.Lock()

    def __getitem__(self, name: str) -> TaskInstance:
        entry = self._entries[name]
        if type(entry) is StoredText:
            return self._decode(name, entry)
        return entry  # type: ignore[return-value]

    def __setitem__(self, name: str, instance: TaskInstance) -> None:
        with self._mutex:
            if type(self._entries.get(name)) is StoredText:
                self._pending -= 1
            self._entries[name] = instance

    def __delitem__(self, name: str) -> None:
        with self._mutex:
            if type(self._entries.pop(name)) is StoredText:
                self._pending -= 1

    def __iter__(self) -> Iterator[str]:
        return iter(self._entries)

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, name: object) -> bool:
        return name in self._entries

    def __repr__(self) -> str:
        return repr(dict(self.items()))

    def values(self) -> ValuesView[TaskInstance]:
        self._decode_all()
        return cast("ValuesView[TaskInstance]", self._entries.values())

    def items(self) -> ItemsView[str, TaskInstance]:
        self._decode_all()
        return cast("ItemsView[str, TaskInstance]", self._entries.items())

    def __reversed__(self) -> Iterator[str]:
        return reversed(self._entries)

    def __or__(self, other: Mapping[str, TaskInstance]) -> dict[str, TaskInstance]:
        return self.copy() | dict(other)

    def __ror__(self, other: Mapping[str, TaskInstance]) -> dict[str, TaskInstance]:
        return dict(other) | self.copy()

    def copy(self) -> dict[str, TaskInstance]:
        """A plain dict of the instances (what ``storage.instances.copy()`` always gave)."""
        return dict(self.items())

    def add_text(self, name: str, entry: StoredText) -> None:
        """Add a stored record to be decoded when first read."""
        with self._mutex:
            if type(self._entries.get(name)) is not StoredText:
                self._pending += 1
            self._entries[name] = entry

    def decoded(self) -> list[tuple[str, TaskInstance]]:
        """The entries decoded so far: the only ones that can have changed since the load."""
        return [
            (name, entry) for name, entry in self._entries.items() if isinstance(entry, TaskInstance)
        ]

    def unresolved(self) -> list[TaskInstance]:
        """The unresolved instances, decoding no resolved text."""
        if self._pending:
            for name, entry in list(self._entries.items()):
                if type(entry) is StoredText and not entry.resolved:
                    self._decode(name, entry)
        return [
            entry
            for entry in self._entries.values()
            if isinstance(entry, TaskInstance) and not entry.is_resolved
        ]

    def _decode_all(self) -> None:
        if self._pending:
            for name, entry in list(self._entries.items()):
                if type(entry) is StoredText:
                    self._decode(name, entry)

    def _decode(self, name: str, entry: StoredText) -> TaskInstance:
        try:
            instance = TaskInstance.from_text(name, entry.text, self._configs)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise CorruptSessionError(
                f"session {self._uid!r}: stored data of instance {name!r} could not be decoded "
                f"({exc}); it was left untouched"
            ) from exc
        with self._mutex:
            current = self._entries.get(name)
            if isinstance(current, TaskInstance):
                return current  # another thread decoded it meanwhile: everyone gets the first object
            if current is entry:
                self._entries[name] = instance
                self._pending -= 1
        return instance


class TriggerStorageBackend:
    """Session state for one ``uid``, loaded lazily and saved under a lease lock.

    Common options (every backend accepts them, as keyword arguments):

    ``lease_ttl`` (default 30 s)
        How long a lock is held before another holder may take it over.
    ``lock_timeout`` (default 40 s)
        How long ``acquire_lock()`` waits before raising
        :class:`LockTimeoutError`; longer than the lease, so a waiter outlives
        a crashed holder.
    ``clock``
        Seconds since the epoch (default :func:`time.time`); tests inject one.

    Reads need no lock, but show the session as it was when it was loaded
    (call :meth:`invalidate_cache` to see newer saves). Every change must be
    saved inside ``acquire_lock()``; acquiring the lock reloads the session,
    so the holder changes the latest state.
    """

    capabilities: ClassVar[Capabilities] = Capabilities()
    """What this backend guarantees; override on subclasses that do more.

    Read it from the object (``storage.capabilities``): a backend whose limits
    depend on its store (a server variable, say) narrows them per object with
    :meth:`_declare_capabilities`.
    """

    def __init__(
        self,
        uid: str,
        *,
        lease_ttl: float = 30.0,
        lock_timeout: float = 40.0,
        clock: Clock = time.time,
    ) -> None:
        self.uid = self._check_uid(uid)
        self.lease_ttl = _seconds("lease_ttl", lease_ttl, allow_zero=False)
        self.lock_timeout = _seconds("lock_timeout", lock_timeout, allow_zero=True)
        self.clock = clock
        # One re-entrant mutex guards this object's state and is held for the
        # whole time the session lock is held, so threads sharing this object
        # are excluded by it and other objects are excluded by the lease.
        self._mutex = threading.RLock()
        self._lock_depth = 0
        self._lease: Lease | None = None
        self._lock_wait_ends: float | None = None  # time.monotonic() at which acquire_lock gives up
        self._transacting = False  # inside an optimistic attempt of transact()
        self._recent_writes: object = []  # as loaded: see RECENT_WRITES_KEY
        self._configs: dict[str, TaskConfig] = {}
        self._instances = _InstanceTable(self._configs, self.uid)
        self._metas: dict[str, Any] = {}
        self._snapshot = _Snapshot()
        self._version: int | None = None
        self._level = LoadScope.NONE

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        base = TriggerStorageBackend
        partial = cls._load_session is not base._load_session
        if partial and cls._save_changes is base._save_changes and cls._save is base._save:
            raise TypeError(
                f"{cls.__qualname__} overrides _load_session but neither _save_changes nor _save"
            )
        if (cls._acquire_lease is base._acquire_lease) != (cls._release_lease is base._release_lease):
            raise TypeError(
                f"{cls.__qualname__} must override _acquire_lease and _release_lease together"
            )

    # ------------------------------------------------------------------
    # The two-method contract for custom backends
    # ------------------------------------------------------------------

    def _load_from_backend(self) -> tuple[Mapping[str, Any], Mapping[str, Any], Mapping[str, Any]]:
        """Return ``(task_configs, task_instances, metadata)`` stored for ``self.uid``.

        Each is a mapping in the form :meth:`_serialize` produced; a session
        that does not exist yet is three empty mappings.
        """
        raise NotImplementedError(
            f"{type(self).__qualname__} must implement _load_from_backend() or _load_session()"
        )

    def _save(self) -> None:
        """Persist ``self._configs``, ``self._instances`` and ``self._metas``.

        Use ``self._serialize(...)`` on each of them to get plain JSON data.
        """
        raise NotImplementedError(
            f"{type(self).__qualname__} must implement _save() or _save_changes()"
        )

    def _serialize(self, data: Mapping[str, Any]) -> dict[str, values.JSONValue]:
        """Turn ``self._configs``, ``self._instances`` or ``self._metas`` into JSON data.

        Task configs and instances become their stored records; metadata
        values are encoded by :mod:`triggers.values` (so datetimes survive).
        """
        serialized: dict[str, values.JSONValue] = {}
        for key, item in data.items():
            if isinstance(item, TaskConfig | TaskInstance):
                serialized[key] = item.to_mapping()
            else:  # metadata: its keys are escaped like those of any stored dict
                serialized[values.escape_key(key)] = values.encode(
                    item, f"session {self.uid!r} metadata[{key!r}]"
                )
        return serialized

    # ------------------------------------------------------------------
    # Optional hooks for native backends (see the module docstring)
    # ------------------------------------------------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        """Load the session; the default calls :meth:`_load_from_backend`."""
        configs, instances, metadata = self._load_from_backend()
        return StoredSession(configs=configs, instances=instances, metadata=metadata)

    def _save_changes(self, changes: SessionChanges) -> None:
        """Write ``changes`` atomically; the default rewrites everything via :meth:`_save`."""
        self._save()

    def _lease_key(self) -> Hashable:
        """Key of this session in the process-local lease table."""
        cls = type(self)
        return (f"{cls.__module__}.{cls.__qualname__}", self.uid)

    def _acquire_lease(self, lease: Lease) -> bool:
        """Try once to take the lease; True on success. Default: process-local."""
        return LOCAL_LEASES.try_acquire(self._lease_key(), lease, self.clock())

    def _renew_lease(self, lease: Lease) -> bool:
        """Extend a lease we hold; False if it was taken over."""
        return LOCAL_LEASES.renew(self._lease_key(), lease)

    def _release_lease(self, lease: Lease) -> None:
        """Release the lease if ``lease.token`` still holds it."""
        LOCAL_LEASES.release(self._lease_key(), lease.token)

    def _lock_wait_left(self) -> float | None:
        """Seconds left of the running ``acquire_lock()`` wait (``None`` outside one).

        For :meth:`_acquire_lease` implementations whose store can block a
        call (behind another client's open transaction, say): bounding each
        attempt by this keeps ``lock_timeout`` a promise.
        """
        ends = self._lock_wait_ends
        return None if ends is None else max(0.0, ends - time.monotonic())

    def _close(self) -> None:
        """Release per-session resources; the default has none."""

    # ------------------------------------------------------------------
    # Administration: optional class-level hooks for operators and the
    # ``triggers`` command (``schema create|check``, ``migrate --all``).
    # They receive the same options as the constructor (minus ``uid``) and
    # must ignore the common ones (``lease_ttl``, ``lock_timeout``, ``clock``).
    # ------------------------------------------------------------------

    @classmethod
    def administers(cls, hook: str) -> bool:
        """True if this backend implements the administration class method ``hook``
        (``create_schema``, ``check_schema``, ``session_uids``) rather than the default."""
        return inspect.getattr_static(cls, hook) is not inspect.getattr_static(
            TriggerStorageBackend, hook
        )

    @classmethod
    def capabilities_for(cls, **options: Any) -> Capabilities:
        """What a storage object made with ``options`` guarantees (without making one).

        The class's declaration by default; a backend whose guarantees depend
        on its configuration (an in-memory SQLite database is not shared
        between processes) answers for that configuration.
        """
        return cls.capabilities

    @classmethod
    def create_schema(cls, **options: Any) -> list[str]:
        """Create the tables / indexes / collections the backend needs; idempotent.

        Returns a line per object created or found, for the operator. The
        default (a backend without a schema) returns an empty list.
        """
        return []

    @classmethod
    def check_schema(cls, **options: Any) -> list[str]:
        """Describe the store's schema; raise :class:`SchemaError` if it is missing or outdated."""
        return []

    @classmethod
    def session_uids(cls, **options: Any) -> Iterator[str]:
        """Yield the uid of every stored session (for ``triggers migrate --all``).

        Backends that cannot enumerate their sessions (a cache, for example)
        keep this default, which raises :class:`NotImplementedError`.
        """
        raise NotImplementedError(f"{cls.__qualname__} cannot list its sessions")

    # ------------------------------------------------------------------
    # Session state
    # ------------------------------------------------------------------

    @property
    def tasks(self) -> Mapping[str, TaskConfig]:
        """Task configurations by name (read-only; change them with
        :meth:`update_configuration`)."""
        self._ensure(LoadScope.ACTIVE)
        return MappingProxyType(self._configs)

    @property
    def instances(self) -> Mapping[str, TaskInstance]:
        """Every task instance by name, finished history included (read-only view)."""
        self._ensure(LoadScope.FULL)
        return MappingProxyType(self._instances)

    @property
    def metadata(self) -> dict[str, Any]:
        """Session metadata: a live dict; changes are written by :meth:`save`."""
        self._ensure(LoadScope.ACTIVE)
        return self._metas

    def __getitem__(self, instance_name: str) -> TaskInstance:
        with self._mutex:
            self._ensure(LoadScope.ACTIVE)
            if instance_name not in self._instances:
                self._ensure(LoadScope.FULL)
            try:
                return self._instances[instance_name]
            except KeyError:
                raise InstanceNotFoundError(
                    f"session {self.uid!r} has no task instance {instance_name!r}"
                ) from None

    def __contains__(self, instance_name: object) -> bool:
        if not isinstance(instance_name, str):
            return False
        try:
            self[instance_name]
        except InstanceNotFoundError:
            return False
        return True

    def __iter__(self) -> Iterator[TaskInstance]:
        """Iterate over the session's task instances, in name order.

        Instances, not names, as in Triggers 2.0 (``for task_instance in
        iter(storage)``); ``name in storage`` still tests an instance name.
        """
        return iter(sorted(self.instances.values(), key=_instance_order))

    def __len__(self) -> int:
        return len(self.instances)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(uid={self.uid!r})"

    def update_configuration(self, configuration: Mapping[str, Any]) -> dict[str, TaskConfig]:
        """Validate and add (or replace) task configurations.

        ``configuration`` maps task names to directive mappings (or
        :class:`TaskConfig` objects). Every task is validated before any is
        applied: one bad task refuses the whole update, naming the task and
        directive. Returns the configs that were applied. Call :meth:`save`
        (under the lock) to persist them.
        """
        parsed = self.parse_configuration(configuration)
        with self._mutex:
            self._ensure(LoadScope.ACTIVE)
            self._configs.update(parsed)
            # Instances still undecoded will be decoded with the new configs.
            for _, instance in self._instances.decoded():
                if instance.config.name in parsed:
                    instance.config = parsed[instance.config.name]
        return parsed

    @staticmethod
    def parse_configuration(configuration: Mapping[str, Any]) -> dict[str, TaskConfig]:
        """Validate a whole configuration; the first bad task raises ConfigurationError."""
        if not isinstance(configuration, Mapping):
            raise ConfigurationError(
                f"configuration must map task names to directives, not {type(configuration).__name__}"
            )
        parsed: dict[str, TaskConfig] = {}
        for name, directives in configuration.items():
            if isinstance(directives, TaskConfig):
                if directives.name != name:
                    raise ConfigurationError(f"task {name!r}: TaskConfig is named {directives.name!r}")
                parsed[name] = directives
            else:
                parsed[name] = TaskConfig.from_mapping(name, directives)
        return parsed

    def create_instance(self, task_config: TaskConfig | str, **kwargs: Any) -> TaskInstance:
        """Create the next instance of a task (``task#N``) and add it to the session.

        ``kwargs`` are passed to :class:`TaskInstance` (``status``, ``kwargs``,
        ``metadata``...). The instance is stamped ``created``/``lastModified``.
        """
        with self._mutex:
            config = self._config_for(task_config)
            number = self._next_instance_number(config.name)
            name = f"{config.name}#{number}"
            metadata = dict(kwargs.pop("metadata", None) or {})
            now = self.now()
            metadata.setdefault("created", now)
            metadata.setdefault("lastModified", now)
            instance = TaskInstance(name, config, metadata=metadata, **kwargs)
            self._instances[name] = instance
            return instance

    def restore_instance(self, instance_name: str, record: Mapping[str, Any]) -> TaskInstance:
        """Put an instance into the session exactly as it was stored elsewhere.

        For copying a session between stores (``triggers import`` and
        ``triggers migrate``): unlike :meth:`create_instance`, the name,
        status, kwargs and history in ``record`` (the stored form, as
        :meth:`TaskInstance.to_mapping` and :meth:`debug_repr` give it) are
        kept as they are. The instance's task must be configured; an instance
        of the same name is replaced. Call :meth:`save` (under the lock) to
        persist it; the manager never calls this.
        """
        if not isinstance(instance_name, str) or not instance_name:
            raise ValueError(f"session {self.uid!r}: instance name must be a non-empty str")
        if not isinstance(record, Mapping):
            raise TypeError(
                f"session {self.uid!r}: instance {instance_name!r} must be a mapping, "
                f"not {type(record).__name__}"
            )
        with self._mutex:
            self._ensure(LoadScope.ACTIVE)
            try:
                instance = TaskInstance.from_stored(instance_name, record, self._configs)
            except (ValueError, TypeError, AttributeError) as exc:
                raise ValueError(f"session {self.uid!r}: instance {instance_name!r}: {exc}") from exc
            if _instance_number(instance_name) < 0 or instance_name.rpartition("#")[0] != instance.task_name:
                raise ValueError(
                    f"session {self.uid!r}: instance {instance_name!r} is not named "
                    f"{instance.task_name}#N after its task"
                )
            self._instances[instance_name] = instance
            return instance

    def clone_instance(self, instance_or_name: TaskInstance | str) -> TaskInstance:
        """Create a new unstarted instance of the same task with the same kwargs.

        The clone records ``parent`` (the original's name) and ``depth``
        (the original's + 1) in its metadata: this is how replays are made.
        """
        with self._mutex:
            original = self[instance_or_name] if isinstance(instance_or_name, str) else instance_or_name
            return self.create_instance(
                original.config,
                kwargs=values.decode(values.encode(original.kwargs)),
                metadata={"parent": original.name, "depth": original.depth + 1},
            )

    def instances_of_task(self, task_config_or_name: TaskConfig | str) -> list[TaskInstance]:
        """Every instance of a task, oldest first."""
        name = task_config_or_name.name if isinstance(task_config_or_name, TaskConfig) else task_config_or_name
        with self._mutex:
            self._ensure(LoadScope.FULL)
            found = [i for i in self._instances.values() if i.config.name == name]
        return sorted(found, key=_instance_order)

    def get_unresolved_instances(self) -> list[TaskInstance]:
        """Instances that may still run or change (not abandoned/finished/replayed/skipped)."""
        with self._mutex:
            self._ensure(LoadScope.ACTIVE)
            found = list(self._instances.unresolved())
        return sorted(found, key=_instance_order)

    def get_instances_with_unresolved_logs(self) -> list[TaskInstance]:
        """Instances whose logs still need attention (see :attr:`TaskInstance.logs_resolved`):
        an ERROR or worse, not marked resolved, on an instance nobody dealt with."""
        with self._mutex:
            self._ensure(LoadScope.FULL)
            found = [i for i in self._instances.values() if not i.logs_resolved]
        return sorted(found, key=_instance_order)

    def instance_count(self, task_config_or_name: TaskConfig | str) -> int:
        """How many instances of a task were ever created (finished ones included)."""
        name = task_config_or_name.name if isinstance(task_config_or_name, TaskConfig) else task_config_or_name
        with self._mutex:
            return self._instance_counts().get(name, 0)

    def get_unresolved_tasks(self) -> list[TaskConfig]:
        """Tasks that have an unresolved instance, or that may still get one.

        A task with no instance yet is unresolved unless all of its ``unless``
        triggers have fired (it never will get one).
        """
        with self._mutex:
            self._ensure(LoadScope.ACTIVE)
            busy = {i.config.name for i in self._instances.unresolved()}
            fired = self._metas.get(TRIGGER_KWARGS_KEY)
            fired = fired if isinstance(fired, dict) else {}
            counts = self._instance_counts()

            def unresolved(config: TaskConfig) -> bool:
                if config.name in busy:
                    return True
                return counts.get(config.name, 0) == 0 and not config.unless_met(fired)

            return [config for _, config in sorted(self._configs.items()) if unresolved(config)]

    def now(self) -> datetime:
        """The current time as an aware UTC datetime, by this backend's clock."""
        return datetime.fromtimestamp(self.clock(), UTC)

    def debug_repr(self) -> dict[str, Any]:
        """The whole session as plain data, for logs and bug reports."""
        with self._mutex:
            self._ensure(LoadScope.FULL)
            return {
                "uid": self.uid,
                "tasks": {name: config.to_mapping() for name, config in self._configs.items()},
                "instances": {
                    name: instance.to_mapping()
                    for name, instance in sorted(self._instances.items(), key=lambda kv: _instance_order(kv[1]))
                },
                "metadata": values.encode(self._metas, "metadata"),
            }

    # ------------------------------------------------------------------
    # Locking and saving
    # ------------------------------------------------------------------

    @contextmanager
    def acquire_lock(self, ttl: float | None = None, timeout: float | None = None) -> Iterator[Lease]:
        """Hold the session lock for the ``with`` block.

        Re-entrant in the holding thread. The outermost acquisition waits up
        to ``timeout`` seconds (default ``lock_timeout``) for the lease, then
        reloads the session so the holder works on the latest state. The lease
        lasts ``ttl`` seconds (default ``lease_ttl``); a holder that outlives
        it can no longer save. Raises :class:`LockTimeoutError` when the wait
        runs out.
        """
        wait = self.lock_timeout if timeout is None else _seconds("timeout", timeout, allow_zero=True)
        lease_ttl = self.lease_ttl if ttl is None else _seconds("ttl", ttl, allow_zero=False)
        if not self._mutex.acquire(timeout=wait if wait > 0 else 0):
            raise LockTimeoutError(
                f"session {self.uid!r}: another thread holds this storage object's lock; "
                f"gave up after {wait:g} s"
            )
        try:
            if self._lock_depth == 0:
                self._lease = self._take_lease(lease_ttl, wait)
                self._reset_state()
            self._lock_depth += 1
            try:
                yield self._current_lease()
            except BaseException:
                # Whatever the block changed was not saved and may be half
                # done: drop it, so no later read sees state that never was.
                # Only when the error leaves the outermost block: an outer
                # block that catches it keeps its own unsaved changes.
                if self._lock_depth == 1:
                    self._reset_state()
                raise
            finally:
                self._lock_depth -= 1
                if self._lock_depth == 0:
                    self._give_back_lease()
        finally:
            self._mutex.release()

    def _take_lease(self, ttl: float, wait: float) -> Lease:
        min_ttl = self.capabilities.min_lease_seconds
        if ttl < min_ttl:
            raise ConfigurationError(
                f"session {self.uid!r}: lease of {ttl:g} s is shorter than this store "
                f"honours ({min_ttl:g} s)"
            )
        acquired: list[Lease] = []
        tries = 0

        def attempt() -> bool:
            nonlocal tries
            tries += 1
            lease = Lease.new(self.uid, ttl, self.clock)
            if self._call("acquire the lock", self._acquire_lease, lease, repeatable=True):
                acquired.append(lease)
                return True
            return False

        self._lock_wait_ends = time.monotonic() + wait
        attributes = observability.session_attributes(self, self.uid)
        started = time.monotonic()
        try:
            with (
                observability.span("triggers.lock_wait", attributes) as span,
                observability.counting_round_trips(span),
            ):
                acquired_in_time = poll_until(attempt, timeout=wait)
                span.set_attribute("triggers.attempts", tries)
        finally:
            self._lock_wait_ends = None
            observability.record("triggers.lock_wait_seconds", time.monotonic() - started, attributes)
            # Each try that found the lease held by someone else is one conflict.
            observability.record("triggers.lock_conflicts", tries - len(acquired), attributes)
        if not acquired_in_time:
            observability.record("triggers.lock_timeouts", 1, attributes)
            raise LockTimeoutError(
                f"session {self.uid!r} is locked by another holder; gave up after {wait:g} s "
                f"(a crashed holder's lease ends within {self.lease_ttl:g} s)"
            )
        return acquired[0]

    def _give_back_lease(self) -> None:
        lease, self._lease = self._lease, None
        if lease is None:
            return
        try:
            self._call("release the lock", self._release_lease, lease, repeatable=True)
        except StorageError:
            # The lease expires by itself; failing here would hide the error
            # (if any) that is already leaving the with-block.
            logger.warning("session %r: could not release the lock; it expires in %g s",
                           self.uid, lease.ttl, exc_info=True)

    def _current_lease(self) -> Lease:
        if self._lease is None:  # pragma: no cover - guarded by _lock_depth
            raise LockNotHeldError(f"session {self.uid!r}: the lock is not held")
        return self._lease

    @property
    def lock_held(self) -> bool:
        """True while the calling thread holds this object's session lock."""
        if not self._mutex.acquire(blocking=False):
            return False
        try:
            return self._lock_depth > 0
        finally:
            self._mutex.release()

    def renew_lock(self) -> Lease:
        """Extend the held lease by its ttl from now (for long critical sections).

        Raises :class:`LeaseExpiredError` if the lease was already taken over.
        """
        with self._mutex:
            lease = self._require_lock("renew the lock")
            renewed = lease.renewed(self.clock)
            if lease.expired(self.clock) or not self._call("renew the lock", self._renew_lease, renewed, repeatable=True):
                raise LeaseExpiredError(
                    f"session {self.uid!r}: the lease expired and may have been taken over; "
                    "acquire the lock again"
                )
            self._lease = renewed
            return renewed

    def save(self) -> None:
        """Write every change since the load, atomically, under the held lock.

        Values are validated and limits checked first, so a refused save
        writes nothing. Raises :class:`LockNotHeldError` outside the lock,
        :class:`LeaseExpiredError` once the lease ran out, and
        :class:`StaleSessionError` when the store refuses a stale write (the
        in-memory state is then dropped; reacquire the lock and redo).
        """
        with self._mutex:
            lease = self._require_lock("save")
            if self._level == LoadScope.NONE:
                return  # nothing was loaded, so nothing can have changed
            changes, snapshot = self._collect_changes(lease)
            if changes.is_empty:
                return
            self._check_limits(changes)
            if lease.expired(self.clock):
                raise LeaseExpiredError(
                    f"session {self.uid!r}: the lock's lease ({lease.ttl:g} s) ran out before "
                    "the save; nothing was written. Acquire the lock again and redo the change"
                )
            self._write(changes, snapshot)

    def _write(self, changes: SessionChanges, snapshot: _Snapshot) -> None:
        """Hand checked changes to the backend; on success they become the baseline.

        A refusal (:class:`StaleSessionError`) drops the loaded state, which
        no longer matches the store.
        """
        attributes = observability.session_attributes(self, self.uid)
        try:
            with (
                observability.span("triggers.save", attributes) as span,
                observability.counting_round_trips(span),
            ):
                try:
                    self._call("save", self._save_changes, changes)
                except StaleSessionError:
                    span.set_attribute("triggers.outcome", "stale")
                    raise
                span.set_attribute("triggers.outcome", "saved")
        except StaleSessionError:
            observability.record("triggers.stale_refusals", 1, attributes)
            self._reset_state()
            raise
        if observability.wants_metrics():
            observability.record("triggers.save_bytes", _changes_bytes(changes), attributes)
        self._snapshot = snapshot
        self._version = changes.new_version

    def transact(self, change: Callable[[], _T], *, timeout: float | None = None) -> _T:
        """Apply ``change`` to the latest state of the session and save it atomically.

        ``change`` reads and changes the session through this object (its
        properties and methods; no lock, no :meth:`save`) and returns what
        ``transact`` returns. It may run more than once, each time on freshly
        loaded state, so it must not act outside the session (send nothing,
        start nothing): do that with what ``transact`` returned.

        On a backend with ``optimistic_saves``, no lease is taken: one load,
        one conditional write, and on a refusal a reload and a new attempt,
        for at most ``timeout`` seconds (default ``lock_timeout``), then
        :class:`ContentionError`. Otherwise, and inside ``acquire_lock()``,
        the change runs under the lock. An exception from ``change`` leaves
        nothing written and the loaded state dropped.
        """
        wait = self.lock_timeout if timeout is None else _seconds("timeout", timeout, allow_zero=True)
        if not self._mutex.acquire(timeout=wait if wait > 0 else 0):
            raise LockTimeoutError(
                f"session {self.uid!r}: another thread is changing this storage object; "
                f"gave up after {wait:g} s"
            )
        try:
            if self._lock_depth or not self.capabilities.optimistic_saves:
                with self.acquire_lock(timeout=wait):
                    result = change()
                    self.save()
                    return result
            return self._transact_optimistically(change, wait)
        finally:
            self._mutex.release()

    def _transact_optimistically(self, change: Callable[[], _T], wait: float) -> _T:
        """:meth:`transact` without a lease: load, change, conditional write; retry if refused."""
        attributes = observability.session_attributes(self, self.uid)
        deadline = time.monotonic() + wait
        delays = backoff_delays(RETRY_FIRST_DELAY, RETRY_MAX_DELAY)
        attempts = conflicts = 0
        self._lock_wait_ends = deadline  # bounds the backend's calls, as for a lock wait
        try:
            with observability.span("triggers.transaction", attributes) as span:
                while True:
                    attempts += 1
                    span.set_attribute("triggers.attempts", attempts)
                    self._reset_state()
                    self._transacting = True
                    token = secrets.token_hex(8)
                    writing = False
                    try:
                        result = change()
                        writing = True
                        self._save_optimistically(token)
                        return result
                    except StaleSessionError as refusal:
                        conflicts += 1
                        reason = refusal
                    except StorageError as failure:
                        # A failed load is final; a failed write may have landed.
                        if not writing:
                            self._reset_state()
                            raise
                        if self._own_write_landed(token, failure):
                            return result
                        raise
                    except BaseException:
                        self._reset_state()
                        raise
                    finally:
                        self._transacting = False
                    self._reset_state()
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        observability.record("triggers.contention_timeouts", 1, attributes)
                        raise _contention(self.uid, attempts, wait, reason) from reason
                    time.sleep(min(remaining, next(delays)))
        finally:
            self._lock_wait_ends = None
            observability.record("triggers.write_conflicts", conflicts, attributes)

    def _save_optimistically(self, token: str) -> None:
        """Write the changes of one optimistic attempt, tagged with ``token``; none: no write."""
        if self._level == LoadScope.NONE:
            return  # nothing was loaded, so nothing can have changed
        changes, snapshot = self._collect_changes(None)
        if changes.is_empty:
            return
        recent = self._recent_writes
        earlier = [t for t in recent if isinstance(t, str)] if isinstance(recent, list) else []
        tokens: list[values.JSONValue] = [*earlier[-(RECENT_WRITES_KEPT - 1):], token]
        changes = dataclasses.replace(
            changes,
            metadata={**changes.metadata, RECENT_WRITES_KEY: tokens},
            metadata_texts={**changes.metadata_texts, RECENT_WRITES_KEY: values.canonical_json(tokens)},
        )
        self._check_limits(changes)
        self._write(changes, snapshot)
        self._recent_writes = tokens

    def _own_write_landed(self, token: str, failure: StorageError) -> bool:
        """After a write failed without a refusal: did it land all the same?

        The store may have committed the write and lost only the reply. Its
        token among ``recentWrites`` tells. If the store cannot be read
        either, the outcome is unknown, and the error says so.
        """
        self._transacting = False
        self._reset_state()
        try:
            stored = self._call("load", self._load_session, LoadScope.ACTIVE, repeatable=True)
        except StorageError as unreadable:
            raise StorageError(
                f"session {self.uid!r}: a save failed ({failure}) and the session could not "
                f"be read back ({unreadable}), so whether it was written is unknown; "
                "read the session before doing the change again"
            ) from failure
        landed = stored.metadata.get(RECENT_WRITES_KEY)
        if isinstance(landed, StoredText):
            landed = json.loads(landed.text)
        return isinstance(landed, list) and token in landed

    def invalidate_cache(self) -> None:
        """Forget the loaded state; the next access reloads it from the store."""
        with self._mutex:
            self._reset_state()

    def close(self) -> None:
        """Forget the loaded state and release per-session resources.

        Connection pools are shared per process and stay open.
        """
        with self._mutex:
            self._reset_state()
            self._call("close", self._close)

    def __enter__(self: _T) -> _T:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ------------------------------------------------------------------
    # Internals
    # ------------------------------------------------------------------

    def _check_uid(self, uid: object) -> str:
        if not isinstance(uid, str):
            raise TypeError(f"session uid must be a str, not {type(uid).__name__}")
        if not uid:
            raise ValueError("session uid must not be empty")
        try:
            values.check(uid, "session uid")
        except ValueDomainError as exc:
            raise ValueError(str(exc)) from None
        limit = self.capabilities.max_uid_length
        if limit is not None and len(uid) > limit:
            raise ValueError(
                f"session uid {uid[:40]!r}... is {len(uid)} characters long; "
                f"{type(self).__name__} accepts at most {limit}"
            )
        return uid

    def _reset_state(self) -> None:
        self._configs = {}
        self._instances = _InstanceTable(self._configs, self.uid)
        self._metas = {}
        self._snapshot = _Snapshot()
        self._version = None
        self._level = LoadScope.NONE
        self._recent_writes = []

    def _require_lock(self, action: str) -> Lease:
        if self._lock_depth == 0 or self._lease is None:
            raise LockNotHeldError(
                f"session {self.uid!r}: cannot {action} without holding the lock; "
                "use `with storage.acquire_lock(): ...`"
            )
        return self._lease

    def _call(self, action: str, hook: Callable[..., _T], *args: Any, repeatable: bool = False) -> _T:
        """Run a backend hook; the one place where driver errors are retried and translated.

        A ``repeatable`` hook (a load, a lease operation: each ends in the same
        state however often it runs) is run again after a transient driver
        error (:meth:`_is_transient`), after a jittered wait, within what is
        left of the running lock wait or, outside one, of
        :data:`TRANSIENT_RETRY_SECONDS`. Saves are never repeated here: whether
        a failed write landed is for the caller to find out. A driver error
        that stays reaches the caller as :meth:`_translate` makes it, the
        driver's exception as ``__cause__``.
        """
        deadline: float | None = None
        delays: Iterator[float] | None = None
        while True:
            try:
                return hook(*args)
            except (TriggersError, NotImplementedError):
                raise  # ours, or a backend missing a hook: not the store failing
            except Exception as exc:
                if repeatable and self._is_transient(exc):
                    if deadline is None:
                        left = self._lock_wait_left()
                        deadline = time.monotonic() + (TRANSIENT_RETRY_SECONDS if left is None else left)
                        delays = backoff_delays(0.01, 0.5)
                    remaining = deadline - time.monotonic()
                    if remaining > 0 and delays is not None:
                        logger.info("session %r: %s failed (%s), trying again", self.uid, action, exc)
                        time.sleep(min(remaining, next(delays)))
                        continue
                raise self._translate(exc, action) from exc

    def _is_transient(self, error: BaseException) -> bool:
        """True for a driver error after which the same call may succeed; default: never."""
        return False

    def _translate(self, error: BaseException, action: str) -> TriggersError:
        """The error a caller sees for a driver error raised while doing ``action``."""
        return StorageError(hide_passwords(
            f"{type(self).__name__}: could not {action} session {self.uid!r}: "
            f"{type(error).__name__}: {error}"
        ))

    def _ensure(self, scope: LoadScope) -> None:
        with self._mutex:
            if self._level >= scope:
                return
            attributes = {**observability.session_attributes(self, self.uid),
                          "triggers.scope": scope.name.lower()}
            with (
                observability.span("triggers.load", attributes) as span,
                observability.counting_round_trips(span),
            ):
                stored = self._call("load", self._load_session, scope, repeatable=True)
            level = LoadScope.FULL if stored.complete else scope
            if self._level == LoadScope.NONE:
                self._adopt(stored, level, keep_loaded=False)
            elif stored.version != self._version:
                if self._lock_depth or self._transacting:
                    self._reset_state()
                    raise StaleSessionError(
                        f"session {self.uid!r} changed in the store while the lock was held "
                        f"(loaded version {self._version}, stored {stored.version})"
                    )
                self._adopt(stored, level, keep_loaded=False)
            else:
                self._adopt(stored, level, keep_loaded=True)

    def _adopt(self, stored: StoredSession, level: LoadScope, *, keep_loaded: bool) -> None:
        """Decode a load into objects and baselines; keep objects already loaded.

        Each record's baseline is the text it was stored as (see
        :class:`_Snapshot`); resolved records given as :class:`StoredText`
        are not decoded at all until read (see :class:`_InstanceTable`).
        """
        if not keep_loaded:
            self._reset_state()
        snapshot = self._snapshot
        try:
            if not keep_loaded:
                for name, config_record in stored.configs.items():
                    config, text = _stored_config(name, config_record)
                    self._configs[name] = config
                    snapshot.configs[name] = text
                    if _unchangeable(config):
                        snapshot.config_objects[name] = config
                self._adopt_metadata(stored.metadata)
            table = self._instances
            for name, record in stored.instances.items():
                if name in table:
                    continue
                if type(record) is StoredText:
                    snapshot.instances[name] = record.text
                    if record.resolved:
                        table.add_text(name, record)
                    else:
                        table[name] = TaskInstance.from_text(name, record.text, self._configs)
                elif isinstance(record, TaskInstance):
                    table[name] = record
                    snapshot.instances[name] = _fingerprint(record)
                else:
                    instance = TaskInstance.from_stored(name, record, self._configs)
                    table[name] = instance
                    snapshot.instances[name] = _record_text(record, instance)
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            self._reset_state()
            raise CorruptSessionError(
                f"session {self.uid!r}: stored data could not be decoded ({exc}); "
                "it was left untouched"
            ) from exc
        self._version = stored.version
        self._level = level

    def _adopt_metadata(self, stored: Mapping[str, Any]) -> None:
        """Decode the loaded metadata into ``self._metas`` and its baselines."""
        plain: dict[str, Any] = {}
        texts: dict[str, str] = {}
        for key, value in stored.items():
            if type(value) is StoredText:
                texts[key] = value.text
            else:
                plain[key] = value
        if texts:
            if any(key.startswith("$") and not key.startswith("$$") for key in texts) or (
                len(stored) == 1 and "$datetime" in stored
            ):
                # Something is wrong with the keys: decoding all of it the
                # checked way below raises the error it always raised.
                plain = {key: json.loads(text) for key, text in texts.items()} | plain
            else:
                for key, text in texts.items():
                    # Parsed and decoded in one pass (the checked way again,
                    # for its error, if anything is wrong).
                    name = key[1:] if key.startswith("$") else key
                    try:
                        value = values.parse_decoded(text)
                    except Exception:
                        value = values.decode(json.loads(text), f"metadata[{name!r}]")
                    self._metas[name] = value
                    self._snapshot.metadata[name] = text
        if plain:
            self._metas.update(values.decode(plain, "metadata"))
            for key, value in plain.items():
                name = key[1:] if key.startswith("$") else key
                self._snapshot.metadata[name] = _record_text(value, self._metas[name])
        # Plumbing of transact(), not the session's: kept apart, written only by it.
        self._recent_writes = self._metas.pop(RECENT_WRITES_KEY, [])
        self._snapshot.metadata.pop(RECENT_WRITES_KEY, None)

    def _config_for(self, task_config: TaskConfig | str) -> TaskConfig:
        self._ensure(LoadScope.ACTIVE)
        name = task_config.name if isinstance(task_config, TaskConfig) else task_config
        config = self._configs.get(name)
        if config is None:
            raise ConfigurationError(f"session {self.uid!r} has no task {name!r}")
        return config

    def _instance_counts(self) -> dict[str, int]:
        """Instances ever created per task.

        The stored counters are authoritative once the session has them (every
        session this library wrote does), so naming an instance never needs
        the finished history. Only a session written by other means, without
        counters, is counted from a full load.
        """
        self._ensure(LoadScope.ACTIVE)
        counts = self._metas.get(INSTANCE_COUNTS_KEY)
        if isinstance(counts, dict):
            return counts
        self._ensure(LoadScope.FULL)
        counted: dict[str, int] = {}
        for instance in self._instances.values():
            task = instance.config.name
            counted[task] = max(counted.get(task, 0), _instance_number(instance.name) + 1)
        return counted

    def _next_instance_number(self, task: str) -> int:
        counts = self._instance_counts()
        number = counts.get(task, 0)
        while f"{task}#{number}" in self._instances:
            number += 1
        self._metas[INSTANCE_COUNTS_KEY] = {**counts, task: number + 1}
        return number

    def _collect_changes(self, lease: Lease | None) -> tuple[SessionChanges, _Snapshot]:
        """Encode every loaded record (validating it) and diff against the snapshot.

        Each record is encoded once: its canonical text is compared with the
        baseline and handed to the backend with the record (``*_texts``), so
        neither the limits nor a backend that writes text encode it again.
        Instances never decoded since the load are skipped: nothing can have
        changed them, and their baselines carry over.
        """
        baseline = self._snapshot
        snapshot = _Snapshot(instances=dict(baseline.instances))
        configs: dict[str, StoredRecord] = {}
        instances: dict[str, StoredRecord] = {}
        metadata: dict[str, values.JSONValue] = {}
        config_texts: dict[str, str] = {}
        instance_texts: dict[str, str] = {}
        metadata_texts: dict[str, str] = {}
        canonical_json = values.canonical_json
        for name, config in self._configs.items():
            if baseline.config_objects.get(name) is config and not (config.with_params or config.extra):
                snapshot.configs[name] = baseline.configs[name]
                snapshot.config_objects[name] = config
                continue
            record = config.to_mapping()
            text = snapshot.configs[name] = canonical_json(record)
            if _unchangeable(config):
                snapshot.config_objects[name] = config
            if text != baseline.configs.get(name):
                configs[name] = record
                config_texts[name] = text
        for name, instance in self._instances.decoded():
            record = instance.to_mapping()
            text = snapshot.instances[name] = canonical_json(record)
            if text != baseline.instances.get(name):
                instances[name] = record
                instance_texts[name] = text
        for key, value in self._metas.items():
            if not isinstance(key, str):
                raise ValueDomainError(f"session {self.uid!r} metadata: key {key!r} is not a str")
            if not key.isascii():
                values.check(key, f"session {self.uid!r} metadata key")
            where = f"session {self.uid!r} metadata[{key!r}]"
            encoded = values.encode(value, where)
            text = snapshot.metadata[key] = canonical_json(encoded)
            if text != baseline.metadata.get(key):
                escaped = values.escape_key(key)
                metadata[escaped] = encoded
                metadata_texts[escaped] = text
        deleted = frozenset(
            values.escape_key(key) for key in set(baseline.metadata) - set(snapshot.metadata)
        )
        changes = SessionChanges(
            uid=self.uid,
            base_version=self._version,
            new_version=(self._version or 0) + 1,
            lease=lease,
            configs=configs,
            instances=instances,
            metadata=metadata,
            deleted_metadata=deleted,
            config_texts=config_texts,
            instance_texts=instance_texts,
            metadata_texts=metadata_texts,
            written_at=self.clock(),
        )
        return changes, snapshot

    def _declare_capabilities(self, capabilities: Capabilities) -> None:
        """Declare what this object's store guarantees, in place of the class's declaration.

        For limits known only once the store is reached (MariaDB's
        ``max_allowed_packet``, for instance). The class attribute stays the
        default for every other object; the base class's checks, and the
        conformance suite, read the object's.
        """
        vars(self)["capabilities"] = capabilities

    def _check_limits(self, changes: SessionChanges) -> None:
        caps = self.capabilities
        if caps.max_record_bytes is not None:
            for row in changes.rows():
                size = _utf8_size(row.text)
                if size > caps.max_record_bytes:
                    raise SessionLimitError(
                        f"session {self.uid!r}: {row.kind} {row.name!r} takes {size} bytes; "
                        f"{type(self).__name__} stores at most {caps.max_record_bytes} "
                        "per record. Nothing was written"
                    )
        if caps.max_session_bytes is not None and self._level == LoadScope.FULL:
            size = self._session_bytes()
            if size > caps.max_session_bytes:
                raise SessionLimitError(
                    f"session {self.uid!r} takes {size} bytes; {type(self).__name__} stores "
                    f"at most {caps.max_session_bytes}. Nothing was written"
                )

    def _session_bytes(self) -> int:
        """Size of the whole session in canonical JSON, as limits count it."""
        document: dict[str, values.JSONValue] = {
            "tasks": self._serialize(self._configs),
            "instances": self._serialize(self._instances),
            "metadata": self._serialize(self._metas),
        }
        return len(values.canonical_json(document).encode("utf-8"))


def _contention(uid: str, attempts: int, wait: float, last: StaleSessionError) -> ContentionError:
    """Why :meth:`TriggerStorageBackend.transact` gave up: the gist, then the store's last refusal."""
    tried = f"gave up after {wait:g} s ({attempts} attempt(s) to save were refused)"
    if last.reason == "leased":
        gist = f"session {uid!r} is locked by another holder"
    elif last.reason in ("version_moved", "created_elsewhere"):
        gist = f"session {uid!r}: other writers kept saving first"
    else:
        gist = f"session {uid!r}: a save kept being refused"
    detail = str(last)
    if not detail.endswith("nothing was written"):
        detail += "; nothing was written"
    return ContentionError(f"{gist}; {tried}; the last refusal: {detail}")


def _seconds(option: str, value: object, *, allow_zero: bool) -> float:
    """A finite, non-negative duration option, or a ConfigurationError naming it.

    NaN or infinity would silently break the lease (every comparison with NaN
    is false), so they are refused like any other wrong value.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigurationError(f"{option} must be a number of seconds, not {value!r}")
    seconds = float(value)
    if not math.isfinite(seconds) or seconds < 0 or (seconds == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ConfigurationError(f"{option} must be a finite, {bound} number of seconds, not {value!r}")
    return seconds


def _changes_bytes(changes: SessionChanges) -> int:
    """Bytes of the records a save wrote, in canonical JSON (for the save_bytes metric)."""
    return sum(_utf8_size(row.text) for row in changes.rows())


def _text_of(record: Any, text: str | None) -> str:
    """A changed record's canonical JSON: the text computed with it, else encoded now."""
    return values.canonical_json(record) if text is None else text


def _utf8_size(text: str) -> int:
    return len(text) if text.isascii() else len(text.encode("utf-8"))


def _fingerprint(item: TaskConfig | TaskInstance | Any) -> str:
    """The baseline of an object (or decoded metadata value): its canonical JSON."""
    if isinstance(item, TaskConfig | TaskInstance):
        return values.canonical_json(item.to_mapping())
    return values.canonical_json(values.encode(item))


def _record_text(record: Any, decoded: Any) -> str:
    """The baseline of a record loaded as JSON data: its canonical JSON.

    Data that is no JSON (a backend's own mapping type, say) falls back to
    the canonical JSON of what was decoded from it, as every baseline was
    before: correct either way, since the baseline only decides whether a
    record is written again.
    """
    try:
        return values.canonical_json(record)
    except (TypeError, ValueError):
        return _fingerprint(decoded)


def _unchangeable(config: TaskConfig) -> bool:
    """True if nothing can change ``config``'s stored form.

    A :class:`TaskConfig` is frozen, and its tuples and strings cannot
    change; only ``withParams`` and extra directives hold dicts that could
    (and ``after``/``unless`` lists, in a config built by hand).
    """
    return (
        type(config) is TaskConfig
        and type(config.after) is tuple
        and type(config.unless) is tuple
        and not config.with_params
        and not config.extra
    )


def _stored_config(name: str, record: Any) -> tuple[TaskConfig, str]:
    """A loaded task config and its baseline text."""
    if type(record) is StoredText:
        return TaskConfig.from_text(name, record.text), record.text
    if isinstance(record, TaskConfig):
        return record, _fingerprint(record)
    try:
        text = values.canonical_json(record)
    except (TypeError, ValueError):
        config = TaskConfig.from_stored(name, record)  # raises the decoding error, if any
        return config, _fingerprint(config)
    return TaskConfig.from_stored(name, record, text=text), text


def _instance_number(name: str) -> int:
    _, _, number = name.rpartition("#")
    return int(number) if number.isdigit() else -1


def _instance_order(instance: TaskInstance) -> tuple[str, int, str]:
    return (instance.config.name, _instance_number(instance.name), instance.name)
