"""Stores: what a backend does on its store, configured once per process.

A storage *backend object* is one session (``uid``) loaded into memory; a
*store* is where sessions live: a database with its tables, a cache, a
collection. Everything that belongs to the store rather than to one session
lives in a :class:`Store`, built once per (store class, options, process) and
shared by every session object of the process:

* its options, parsed and checked once (:class:`~triggers.errors.ConfigurationError`
  naming the option), whether a session or an administrator uses them;
* its driver resources (engines, clients, connection pools), opened lazily
  and never inherited across ``fork()``: a child process builds stores of its
  own, so two processes never read replies from one socket;
* its schema, prepared (created or checked) once, before the first session
  of the process uses it (:meth:`Store.prepare_once`);
* what it guarantees (:attr:`Store.capabilities`), per configuration: an
  in-memory SQLite database is not shared between processes, whatever the
  backend could do on a server;
* how its driver fails: which errors are the driver's (:attr:`Store.driver_errors`),
  which of them are worth another try (:meth:`Store.is_transient`), and the
  message an operator reads (:meth:`Store.translate`, passwords hidden);
* the session operations a backend implements: :meth:`Store.load`,
  :meth:`Store.write` and the leases, and the administration that the
  ``triggers`` command offers (:meth:`Store.create_schema`,
  :meth:`Store.check_schema`, :meth:`Store.session_uids`).

:class:`StoreStorageBackend` is the backend class on top: it takes the
common options (``lease_ttl``, ``lock_timeout``, ``clock``) for itself,
hands every other option to its ``store_class``, and turns its hooks into
calls of the shared store (looked up again in a forked child). A backend is then a :class:`Store`
subclass and three lines::

    class RedisStorageBackend(StoreStorageBackend):
        store_class = RedisStore
        capabilities = RedisStore.capabilities
"""

from __future__ import annotations

import math
import os
import threading
import weakref
from collections.abc import Callable, Hashable, Iterator, Mapping
from typing import Any, ClassVar, Self, TypeVar

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, StorageError, TriggersError, hide_passwords
from triggers.locking import Lease
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend

__all__ = [
    "COMMON_OPTIONS",
    "EPOCH",
    "Store",
    "StoreStorageBackend",
    "expiry_due",
    "shared_store",
    "store_options",
    "validated_session_ttl",
]

_T = TypeVar("_T")


class Store:
    """A configured store; subclass it to write a backend (see the module docstring).

    ``__init__`` takes the backend's own options as keywords, checks them and
    raises :class:`~triggers.errors.ConfigurationError` naming a bad one. It
    must not connect: connections open on first use, in the process that uses
    them.
    """

    capabilities: Capabilities = Capabilities()
    """What this store guarantees; a subclass sets its best, an instance may
    narrow it for its configuration (assign ``self.capabilities``)."""

    driver_errors: ClassVar[tuple[type[BaseException], ...]] = (Exception,)
    """The exceptions the driver raises; they reach callers as :class:`StorageError`
    (through :meth:`translate`). Anything else is a bug and propagates as is."""

    def __init__(self, **options: Any) -> None:
        if options:
            names = ", ".join(sorted(options))
            raise ConfigurationError(f"{type(self).__name__} takes no option named {names}")
        self._prepared = False
        self._prepare_mutex = threading.Lock()

    @classmethod
    def shared(cls, **options: Any) -> Self:
        """The store for ``options`` in this process, built on first use (see :func:`shared_store`)."""
        store = shared_store(cls, options)
        assert isinstance(store, cls)
        return store

    # -- lifetime ---------------------------------------------------------------

    def prepare(self) -> None:
        """Create or check what the store needs (tables, indexes); the default needs nothing.

        Called once per shared store by :meth:`prepare_once`. Raise
        :class:`~triggers.errors.SchemaError` saying how to create what is missing.
        """

    def prepare_once(self) -> None:
        """Run :meth:`prepare` the first time only (thread-safe); a failure is retried next time."""
        if self._prepared:
            return
        with self._prepare_mutex:
            if not self._prepared:
                self.prepare()
                self._prepared = True

    def describe(self) -> str:
        """Where this store is, for messages (a URL with its password hidden, a table name)."""
        return type(self).__name__

    def close(self) -> None:
        """Release the store's driver resources (pools); the default has none."""

    # -- errors -----------------------------------------------------------------

    def is_transient(self, error: BaseException) -> bool:
        """True for a driver error after which the same call may well succeed (a
        dropped connection, a deadlock the server broke). Only calls that are
        safe to repeat are retried."""
        return False

    def translate(self, error: BaseException, action: str, uid: str | None) -> TriggersError:
        """The error a caller sees for a driver error: what failed, on which
        session, where, and the driver's own words (passwords hidden)."""
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        what = f"could not {action}" + (f" session {uid!r}" if uid is not None else "")
        text = f"{what} on {self.describe()}: {type(error).__name__}" + (f": {detail}" if detail else "")
        return StorageError(hide_passwords(text))

    # -- session operations -----------------------------------------------------

    def load(self, uid: str, scope: LoadScope) -> StoredSession:
        """Load a session for ``scope`` (see :meth:`TriggerStorageBackend._load_session`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement load()")

    def write(self, uid: str, changes: SessionChanges) -> None:
        """Write ``changes`` atomically, fenced (see :meth:`TriggerStorageBackend._save_changes`)."""
        raise NotImplementedError(f"{type(self).__name__} must implement write()")

    def take_lease(self, uid: str, lease: Lease) -> bool:
        """Take the session's lease if it is free, expired or ``lease``'s own; one try."""
        raise NotImplementedError(f"{type(self).__name__} must implement take_lease()")

    def renew_lease(self, uid: str, lease: Lease) -> bool:
        """Extend ``lease`` if its token still holds the session; False if taken over."""
        raise NotImplementedError(f"{type(self).__name__} must implement renew_lease()")

    def release_lease(self, uid: str, lease: Lease) -> None:
        """Release the session's lease if ``lease``'s token still holds it."""
        raise NotImplementedError(f"{type(self).__name__} must implement release_lease()")

    # -- administration ---------------------------------------------------------

    def create_schema(self) -> list[str]:
        """Create the tables / indexes the store needs, idempotently; a line per object."""
        return []

    def check_schema(self) -> list[str]:
        """Describe the schema; raise :class:`~triggers.errors.SchemaError` if missing or outdated."""
        return []

    def session_uids(self) -> Iterator[str]:
        """Every stored session's uid; a store that cannot list them raises NotImplementedError."""
        raise NotImplementedError(f"{type(self).__name__} cannot list its sessions")


# ----------------------------------------------------------------------
# Session expiry: one option, one rule
# ----------------------------------------------------------------------


def validated_session_ttl(value: object, option: str = "session_ttl") -> float | None:
    """``session_ttl`` as given: seconds a session lives after its last save, or
    ``None`` (sessions never expire). Refused, naming ``option``: anything but a
    finite number above zero (``inf`` included: say ``None`` for "never")."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not (
        math.isfinite(value) and value > 0
    ):
        raise ConfigurationError(
            f"{option} must be a finite number of seconds above zero, or None for sessions "
            f"that never expire; not {value!r}"
        )
    return float(value)


def expiry_due(last_set: float | None, now: float, session_ttl: float | None) -> bool:
    """Whether a save must push the expiry of the documents it does not rewrite.

    Every store extends a session's expiry the same way: the records a save
    writes get ``now + session_ttl``; the others (finished history) are
    extended only once half the ttl has passed since their expiry was last
    set, so a save rarely touches history, yet no part of a session expires
    before the rest (unless writers' clocks disagree by half a ttl).
    """
    if session_ttl is None:
        return False
    return last_set is None or now - last_set > session_ttl / 2


EPOCH = "epoch"
"""The name, in every store that needs one, of a session's incarnation: a
random id given when the session is first written, and again when a store
that can lose a session whole (a cache evicting its keys) finds it gone, so
that nothing of an older incarnation is ever read as part of a newer one."""


# ----------------------------------------------------------------------
# One store per (class, options, process)
# ----------------------------------------------------------------------

_by_value: dict[tuple[int, Hashable], Store] = {}
"""Stores whose options are plain values (a URL, a table name): kept for the
life of the process, so every session object shares their pools."""

_by_object: weakref.WeakValueDictionary[tuple[int, Hashable], Store] = weakref.WeakValueDictionary()
"""Stores built on an object the caller passed in (an engine, a client): kept
while a session object uses them, so a caller who makes such objects over
time (one per tenant, per test) does not keep every one alive."""

_stores_mutex = threading.Lock()


def shared_store(store_class: type[Store], options: Mapping[str, Any]) -> Any:
    """The ``store_class`` store for ``options`` in this process, built on first use.

    Options are compared by value where they are plain data and by identity
    otherwise (an engine or a client passed in is that object). The key holds
    the process id: after ``fork()`` the child builds its own store, and the
    parent's, with its sockets, is never used there.
    """
    by_object = False

    def frozen(value: Any) -> Hashable:
        nonlocal by_object
        if value is None or isinstance(value, str | int | float | bool | bytes):
            return (type(value).__name__, value)
        if isinstance(value, Mapping):
            return ("mapping", tuple(sorted((str(k), frozen(v)) for k, v in value.items())))
        if isinstance(value, list | tuple):
            return ("sequence", tuple(frozen(item) for item in value))
        by_object = True
        return ("object", id(value), _Identity(value))

    pid = os.getpid()
    key = (pid, (store_class, tuple(sorted((name, frozen(v)) for name, v in options.items()))))
    registry: Any = _by_object if by_object else _by_value
    with _stores_mutex:
        store = registry.get(key)
        if store is None:
            # Stores another process made (a parent, before fork()) are never
            # used here: forget them, without closing what is not ours.
            for stale in [k for k in (*_by_value, *_by_object) if k[0] != pid]:
                _by_value.pop(stale, None)
                _by_object.pop(stale, None)
            store = store_class(**options)
            registry[key] = store
    return store


class _Identity:
    """Holds an option object in a store key, so its id cannot be reused while the key lives."""

    __slots__ = ("value",)

    def __init__(self, value: Any) -> None:
        self.value = value

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Identity) and other.value is self.value

    def __hash__(self) -> int:
        return id(self.value)


# ----------------------------------------------------------------------
# The backend class on top of a store
# ----------------------------------------------------------------------

COMMON_OPTIONS = frozenset({"lease_ttl", "lock_timeout", "clock"})
"""Options every backend takes for itself (see :class:`TriggerStorageBackend`);
the others belong to the store."""


def store_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` without the common ones: what a backend's store is built from."""
    return {name: value for name, value in options.items() if name not in COMMON_OPTIONS}


class StoreStorageBackend(TriggerStorageBackend):
    """A backend whose hooks are the operations of a shared :class:`Store`.

    Set ``store_class`` (and ``capabilities``, the best the store can claim,
    for listings). Every option but the common ones builds the store, once
    per process (:meth:`Store.shared`), which is prepared before the first
    session uses it; this object's capabilities are the store's, for its
    configuration. Driver errors are retried and translated as the store
    says. The administration class methods build the store from the same
    options, never preparing it (``check_schema`` must not create tables).
    """

    store_class: ClassVar[type[Store]]

    def __init__(self, uid: str, **options: Any) -> None:
        self._store_options = store_options(options)
        self._store = self.store_class.shared(**self._store_options)
        self._store_pid = os.getpid()
        self._adopt_store_capabilities()
        super().__init__(uid, **{k: v for k, v in options.items() if k in COMMON_OPTIONS})
        try:
            self.store.prepare_once()
        except TriggersError:
            raise
        except self.store.driver_errors as error:
            raise self.store.translate(error, "prepare the store for", uid) from error
        self._adopt_store_capabilities()  # prepare() may learn a limit only the server tells

    def _adopt_store_capabilities(self) -> None:
        """Claim what this store's configuration guarantees, where it narrows the class's."""
        if self.store.capabilities is not type(self.store).capabilities:
            self._declare_capabilities(self.store.capabilities)

    @property
    def store(self) -> Store:
        """This process's store for this object's options, looked up again after ``fork()``.

        An object made before ``fork()`` and used on both sides must not
        share the parent's connections: in a child it resolves (and
        prepares) a store of the child's own.
        """
        if self._store_pid != os.getpid():
            store = self.store_class.shared(**self._store_options)
            store.prepare_once()
            self._store, self._store_pid = store, os.getpid()
        return self._store

    # -- hooks: the store's operations on this session ---------------------------

    def _load_session(self, scope: LoadScope) -> StoredSession:
        return self.store.load(self.uid, scope)

    def _save_changes(self, changes: SessionChanges) -> None:
        self.store.write(self.uid, changes)

    def _acquire_lease(self, lease: Lease) -> bool:
        return self.store.take_lease(self.uid, lease)

    def _renew_lease(self, lease: Lease) -> bool:
        return self.store.renew_lease(self.uid, lease)

    def _release_lease(self, lease: Lease) -> None:
        self.store.release_lease(self.uid, lease)

    def _is_transient(self, error: BaseException) -> bool:
        return isinstance(error, self.store.driver_errors) and self.store.is_transient(error)

    def _translate(self, error: BaseException, action: str) -> TriggersError:
        if isinstance(error, self.store.driver_errors):
            return self.store.translate(error, action, self.uid)
        return super()._translate(error, action)

    # -- administration: the same options, one parse ------------------------------

    @classmethod
    def store_for(cls, **options: Any) -> Store:
        """The store these backend options name (shared, not prepared)."""
        return cls.store_class.shared(**store_options(options))

    @classmethod
    def capabilities_for(cls, **options: Any) -> Capabilities:
        store = cls.store_for(**options)
        narrowed = store.capabilities is not type(store).capabilities
        return store.capabilities if narrowed else cls.capabilities

    @classmethod
    def administers(cls, hook: str) -> bool:
        return getattr(cls.store_class, hook) is not getattr(Store, hook)

    @classmethod
    def create_schema(cls, **options: Any) -> list[str]:
        store = cls.store_for(**options)
        return _administer(store, "create the schema", store.create_schema)

    @classmethod
    def check_schema(cls, **options: Any) -> list[str]:
        store = cls.store_for(**options)
        return _administer(store, "check the schema", store.check_schema)

    @classmethod
    def session_uids(cls, **options: Any) -> Iterator[str]:
        store = cls.store_for(**options)
        return iter(_administer(store, "list the sessions", lambda: list(store.session_uids())))


def _administer(store: Store, action: str, work: Callable[[], _T]) -> _T:
    """Run an administration call, translating driver errors as the store says."""
    try:
        return work()
    except (TriggersError, NotImplementedError):
        raise  # ours, or what the store cannot do (list its sessions): not the store failing
    except store.driver_errors as error:
        raise store.translate(error, action, None) from error
