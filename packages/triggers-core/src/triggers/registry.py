"""Registries of storage backends, trigger managers and task runners.

Each is filled from an entry-point group, so installing a distribution is all
it takes to make its classes selectable by name::

    [project.entry-points."triggers.storage_backends"]
    custom_storage = "app.triggers:CustomStorageBackend"

    storage = storage_backends.get("custom_storage", uid, **options)

Configuration picks a backend by name too, from a mapping
(:func:`storage_from_config`) or from the environment
(:func:`storage_from_env`: ``TRIGGERS_STORAGE_BACKEND`` and
``TRIGGERS_STORAGE_OPTIONS``, the latter a JSON object).
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import threading
import weakref
from collections.abc import Mapping
from importlib import metadata as importlib_metadata
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from triggers.errors import BackendNotFoundError, ConfigurationError

if TYPE_CHECKING:
    from triggers.manager import TriggerManager
    from triggers.runners import TaskRunner
    from triggers.storage import TriggerStorageBackend

__all__ = [
    "BACKEND_ENV",
    "MANAGER_ENV",
    "OPTIONS_ENV",
    "RUNNER_ENV",
    "EntryPointRegistry",
    "manager_from_config",
    "runner_from_spec",
    "selection_of",
    "storage_backends",
    "storage_config_from_env",
    "storage_from_config",
    "storage_from_env",
    "task_runners",
    "trigger_managers",
]

_T = TypeVar("_T")

BACKEND_ENV = "TRIGGERS_STORAGE_BACKEND"
OPTIONS_ENV = "TRIGGERS_STORAGE_OPTIONS"
MANAGER_ENV = "TRIGGERS_MANAGER"
RUNNER_ENV = "TRIGGERS_RUNNER"


class EntryPointRegistry(Generic[_T]):
    """Classes registered under one entry-point group, loaded on first use.

    ``register`` adds a class at run time (handy in tests and in applications
    that are not packaged); it takes precedence over an entry point of the
    same name.
    """

    def __init__(self, group: str, kind: str) -> None:
        self.group = group
        self.kind = kind
        self._mutex = threading.Lock()
        self._loaded: dict[str, type[_T]] = {}
        self._registered: dict[str, type[_T]] = {}

    def _entry_points(self) -> dict[str, importlib_metadata.EntryPoint]:
        return {ep.name: ep for ep in importlib_metadata.entry_points(group=self.group)}

    def names(self) -> list[str]:
        """Names that can be passed to :meth:`get`, sorted."""
        return sorted(set(self._entry_points()) | set(self._registered))

    def register(self, name: str, cls: type[_T]) -> None:
        """Make ``cls`` available as ``name`` in this process."""
        with self._mutex:
            self._registered[name] = cls

    def unregister(self, name: str) -> None:
        with self._mutex:
            self._registered.pop(name, None)
            self._loaded.pop(name, None)

    def load(self, name: str) -> type[_T]:
        """The class registered as ``name``; errors list the installed names."""
        with self._mutex:
            if name in self._registered:
                return self._registered[name]
            if name in self._loaded:
                return self._loaded[name]
        entry_point = self._entry_points().get(name)
        if entry_point is None:
            installed = ", ".join(self.names()) or "none"
            raise BackendNotFoundError(
                f"no {self.kind} named {name!r} is installed (entry-point group "
                f"{self.group!r}); installed: {installed}"
            )
        try:
            cls = entry_point.load()
        except Exception as exc:
            raise BackendNotFoundError(
                f"{self.kind} {name!r} is registered as {entry_point.value!r} but could not be "
                f"imported: {type(exc).__name__}: {exc}"
            ) from exc
        with self._mutex:
            self._loaded[name] = cls
        return cls  # type: ignore[no-any-return]

    def distribution(self, name: str) -> tuple[str, str] | None:
        """``(distribution, version)`` that provides ``name``, if it came from one."""
        entry_point = self._entry_points().get(name)
        if entry_point is None or entry_point.dist is None:
            return None
        return entry_point.dist.name, entry_point.dist.version

    def get(self, name: str, *args: Any, **options: Any) -> _T:
        """Build an instance of the class registered as ``name``.

        Options the class does not accept are refused with a
        :class:`ConfigurationError` that names them.
        """
        cls = self.check_options(name, *args, **options)
        built = cls(*args, **options)
        try:
            _SELECTIONS[built] = (self.group, name, dict(options))
        except TypeError:  # an object that takes no weak reference: nothing remembered
            pass
        return built

    def check_options(self, name: str, *args: Any, **options: Any) -> type[_T]:
        """Refuse what :meth:`get` would refuse, without building anything; the class.

        For callers that must check a configuration before acting on the
        store (the ``triggers`` command reads a schema first, say).
        """
        cls = self.load(name)
        accepted = _accepted_keywords(cls)
        unknown = sorted(set(options) - accepted) if accepted is not None else []
        if unknown:
            raise ConfigurationError(
                f"{self.kind} {name!r}: unknown options {unknown}; it accepts {sorted(accepted or ())}"
            )
        try:
            inspect.signature(cls).bind(*args, **options)
        except TypeError as exc:
            raise ConfigurationError(f"{self.kind} {name!r}: bad options {sorted(options)}: {exc}") from exc
        except ValueError:  # no signature available (C classes): let the call decide
            pass
        return cls


_SELECTIONS: weakref.WeakKeyDictionary[Any, tuple[str, str, dict[str, Any]]] = weakref.WeakKeyDictionary()


def selection_of(built: object) -> tuple[str, dict[str, Any]] | None:
    """``(name, options)`` that :meth:`EntryPointRegistry.get` built ``built`` from, if it did.

    A runner that sends work to other processes ships this (a storage
    backend's registry name and options, as data) so a worker can build the
    same session's storage; objects built otherwise give None.
    """
    try:
        selection = _SELECTIONS.get(built)
    except TypeError:
        return None
    return None if selection is None else (selection[1], dict(selection[2]))


def _accepted_keywords(cls: type) -> set[str] | None:
    """Keyword arguments ``cls(...)`` accepts, following ``**options`` up the MRO.

    A backend's ``__init__(self, uid, *, url, **options)`` passes the rest to
    the base class, so its own signature alone would accept anything. Returns
    None when the set is open-ended (some ``__init__`` up to ``object`` takes
    ``**kwargs`` and passes them on) or cannot be inspected. A backend built
    on a store (:class:`~triggers.stores.StoreStorageBackend`) accepts the
    common options and what its store's ``__init__`` takes.
    """
    from triggers.stores import COMMON_OPTIONS, Store

    store_class = getattr(cls, "store_class", None)
    if isinstance(store_class, type) and issubclass(store_class, Store):
        store_names = _keywords_up_to(store_class, Store)
        return None if store_names is None else store_names | set(COMMON_OPTIONS) | {"uid"}
    return _keywords_up_to(cls, object)


def _keywords_up_to(cls: type, end: type) -> set[str] | None:
    """:func:`_accepted_keywords` along ``cls``'s MRO, stopping before ``end``."""
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is end or klass is object:
            return names if klass is end else None
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            parameters = list(inspect.signature(init).parameters.values())[1:]
        except (TypeError, ValueError):
            return None
        names |= {
            p.name for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
        }
        if not any(p.kind is p.VAR_KEYWORD for p in parameters):
            return names
    return None


storage_backends: EntryPointRegistry[TriggerStorageBackend] = EntryPointRegistry(
    "triggers.storage_backends", "storage backend"
)
trigger_managers: EntryPointRegistry[TriggerManager] = EntryPointRegistry(
    "triggers.managers", "trigger manager"
)
task_runners: EntryPointRegistry[TaskRunner] = EntryPointRegistry("triggers.runners", "task runner")


def storage_from_config(uid: str, config: Mapping[str, Any]) -> TriggerStorageBackend:
    """Build the backend for ``uid`` from ``{"backend": NAME, "options": {...}}``."""
    if not isinstance(config, Mapping):
        raise ConfigurationError(f"storage configuration must be a mapping, not {type(config).__name__}")
    unknown = set(config) - {"backend", "options"}
    if unknown:
        raise ConfigurationError(
            f"storage configuration has unknown keys {sorted(unknown)}; expected 'backend' and 'options'"
        )
    name = config.get("backend")
    if not isinstance(name, str) or not name:
        raise ConfigurationError("storage configuration needs 'backend': the entry-point name of a backend")
    options = config.get("options")
    if options is None:
        options = {}
    if not isinstance(options, Mapping) or not all(isinstance(k, str) for k in options):
        raise ConfigurationError(f"storage backend {name!r}: 'options' must be a mapping of str keys")
    return storage_backends.get(name, uid, **options)


def storage_from_env(
    uid: str, environ: Mapping[str, str] | None = None, *, default: str | None = None
) -> TriggerStorageBackend:
    """Build the backend for ``uid`` named by ``TRIGGERS_STORAGE_BACKEND``.

    ``TRIGGERS_STORAGE_OPTIONS`` (optional) is a JSON object of options.
    ``default`` names the backend to use when the variable is unset.
    """
    return storage_from_config(uid, storage_config_from_env(environ, default=default))


def storage_config_from_env(
    environ: Mapping[str, str] | None = None, *, default: str | None = None
) -> dict[str, Any]:
    """The ``{"backend": NAME, "options": {...}}`` that :func:`storage_from_env` uses.

    For callers that need the selection itself rather than one session (the
    ``triggers`` command's class-level administration, for example).
    """
    env = os.environ if environ is None else environ
    name = env.get(BACKEND_ENV) or default
    if not name:
        raise ConfigurationError(
            f"no storage backend configured: set {BACKEND_ENV} to one of {storage_backends.names()}"
        )
    raw_options = env.get(OPTIONS_ENV) or "{}"
    try:
        options = json.loads(raw_options)
    except json.JSONDecodeError as exc:
        raise ConfigurationError(f"{OPTIONS_ENV} is not valid JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise ConfigurationError(f"{OPTIONS_ENV} must be a JSON object, not {type(options).__name__}")
    return {"backend": name, "options": options}


def manager_from_config(
    storage: TriggerStorageBackend,
    config: Mapping[str, Any] | None = None,
    environ: Mapping[str, str] | None = None,
) -> TriggerManager:
    """Build the trigger manager for ``storage`` by registry names.

    ``config`` may name ``"manager"`` (a ``triggers.managers`` entry point,
    default ``"default"``) and ``"runner"`` (see :func:`runner_from_spec`,
    default ``"eager"``); a name missing from ``config`` is taken from
    ``TRIGGERS_MANAGER`` / ``TRIGGERS_RUNNER`` in the environment.
    """
    config = config or {}
    unknown = set(config) - {"manager", "runner"}
    if unknown:
        raise ConfigurationError(
            f"manager configuration has unknown keys {sorted(unknown)}; expected 'manager' and 'runner'"
        )
    env = os.environ if environ is None else environ
    manager_name = config.get("manager") or env.get(MANAGER_ENV) or "default"
    runner_name = config.get("runner") or env.get(RUNNER_ENV) or "eager"
    return trigger_managers.get(manager_name, storage, runner=runner_from_spec(runner_name))


def runner_from_spec(spec: str) -> TaskRunner:
    """The task runner ``spec`` names: a registry name, or ``module:attribute``.

    ``module:attribute`` reaches a runner the application configured in code
    (``proj.tasks:runner``), or a runner class or factory, called without
    arguments. It is how the ``triggers`` command and ``TRIGGERS_RUNNER`` use
    a runner that is not an entry point.
    """
    from triggers.runners import TaskRunner

    if ":" not in spec:
        return task_runners.get(spec)
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"runner {spec!r}: expected a registry name or module:attribute")
    try:
        found: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            found = getattr(found, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"runner {spec!r} cannot be imported: {type(exc).__name__}: {exc}") from exc
    if not isinstance(found, TaskRunner) and callable(found):
        found = found()
    if not isinstance(found, TaskRunner):
        raise ConfigurationError(
            f"runner {spec!r} is a {type(found).__name__}, not a TaskRunner (nor a class or "
            "factory making one)"
        )
    return found
