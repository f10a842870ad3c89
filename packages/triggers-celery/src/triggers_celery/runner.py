"""``CeleryTaskRunner``: a scheduled instance becomes one Celery task.

The firing process saves the session with the instance ``scheduled`` (as
with any runner), then sends one message (:class:`~triggers_celery.message.RunMessage`)
to the Celery app the application already has. A worker of that app builds
the session's storage from the message, runs the instance through the
trigger manager and cascades there; instances the cascade schedules are sent
on the same way.

Routing: the runner's ``queue`` / ``routing_key`` / ``priority`` apply to
every task, and a task configuration's ``celery`` directive overrides them
for that task::

    "t_transcode": {"after": ["uploaded"], "run": "app.transcode", "using": "celery",
                    "celery": {"queue": "gpu", "routing_key": "gpu.high", "countdown": 5}}

``countdown`` delays the first run; ``retry_countdown`` (runner, or the
directive) delays each rerun after a task raised :class:`~triggers.errors.RetryTask`.
Celery's own routing (``task_routes``) applies to what neither names.
"""

from __future__ import annotations

import importlib
import logging
import os
import time
import weakref
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from triggers import run_leases
from triggers.errors import ConfigurationError
from triggers.registry import selection_of, storage_backends, storage_config_from_env
from triggers.runners import TaskRunner
from triggers.storage import TriggerStorageBackend
from triggers.types import TaskConfig
from triggers_celery.message import RunMessage
from triggers_celery.waiting import wait_until_idle

if TYPE_CHECKING:
    from celery import Celery

    from triggers.manager import TriggerManager

__all__ = ["APP_ENV", "DIRECTIVE", "TASK_NAME", "CeleryTaskRunner", "install", "named_runners",
           "runner_for_app"]

logger = logging.getLogger(__name__)

TASK_NAME = "triggers_celery.run_instance"
"""The name of the Celery task every message calls."""

DIRECTIVE = "celery"
"""A task configuration's directive holding its routing (``queue``, ``routing_key``, ...)."""

APP_ENV = "TRIGGERS_CELERY_APP"
"""``module:attribute`` of the Celery app, for a runner made without one (``--runner celery``)."""

_ROUTING: dict[str, type | tuple[type, ...]] = {"queue": str, "routing_key": str, "exchange": str, "priority": int,
            "countdown": (int, float), "retry_countdown": (int, float)}

_RUNNERS: weakref.WeakKeyDictionary[Any, CeleryTaskRunner] = weakref.WeakKeyDictionary()
_NAMED: weakref.WeakKeyDictionary[Any, dict[str, CeleryTaskRunner]] = weakref.WeakKeyDictionary()


def _app_from_env() -> Celery:
    spec = os.environ.get(APP_ENV)
    if not spec:
        from celery import current_app

        return current_app._get_current_object()
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise ConfigurationError(f"{APP_ENV} must be module:attribute, not {spec!r}")
    try:
        app = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f"{APP_ENV}={spec!r}: cannot import the Celery app: {exc}") from exc
    return app


def _routing(where: str, raw: object) -> dict[str, Any]:
    """Validated routing options (``queue``, ``routing_key``, ...)."""
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{where} must be a mapping of routing options, not {type(raw).__name__}")
    routing: dict[str, Any] = {}
    for key, value in raw.items():
        kind = _ROUTING.get(key)
        if kind is None:
            raise ConfigurationError(f"{where}: unknown option {key!r}; known: {sorted(_ROUTING)}")
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, kind):
            raise ConfigurationError(f"{where}: option {key!r} has the wrong type: {value!r}")
        if key.endswith("countdown") and isinstance(value, int | float) and not value >= 0:
            raise ConfigurationError(f"{where}: option {key!r} must not be negative, not {value!r}")
        routing[key] = value
    return routing


class CeleryTaskRunner(TaskRunner):
    """Sends each scheduled instance to Celery workers as one task.

    ``app``
        The application's Celery app (default: ``$TRIGGERS_CELERY_APP``, else
        Celery's current app). The first runner made for an app also serves
        that app's workers (see :func:`install`).
    ``storage``
        ``{"backend": NAME, "options": {...}}``: how workers build the
        session's storage. By default, the selection the firing storage was
        built from (:func:`triggers.registry.selection_of`).
    ``ship_options``
        False keeps the backend's options (URLs with passwords, say) out of
        the messages: only the backend's name travels and each worker uses
        its own configuration: ``worker_storage``, else the
        ``TRIGGERS_STORAGE_BACKEND`` / ``TRIGGERS_STORAGE_OPTIONS`` variables.
    ``queue``, ``routing_key``, ``exchange``, ``priority``, ``countdown``, ``retry_countdown``
        Routing of every message (a task's ``celery`` directive overrides).
    ``manager``, ``run_lease_ttl``
        The trigger manager (registry name) workers run instances with, and
        its run lease length (:mod:`triggers.run_leases`).
    ``name``
        The ``using`` name this runner answers to on the workers (default
        ``celery``). Several runners of one app (a ``gpu`` queue beside the
        default, say) each take a name; give the firing manager the same
        ``runners={name: runner}``, and the workers send each cascaded task
        through the runner its ``using`` names.
    """

    def __init__(
        self,
        app: Celery | None = None,
        *,
        storage: Mapping[str, Any] | None = None,
        ship_options: bool = True,
        worker_storage: Mapping[str, Any] | None = None,
        queue: str | None = None,
        routing_key: str | None = None,
        exchange: str | None = None,
        priority: int | None = None,
        countdown: float | None = None,
        retry_countdown: float | None = None,
        manager: str = "default",
        run_lease_ttl: float = run_leases.DEFAULT_RUN_LEASE_TTL,
        name: str = "celery",
    ) -> None:
        super().__init__()
        if not isinstance(name, str) or not name:
            raise ConfigurationError(f"CeleryTaskRunner: name must be a non-empty string, not {name!r}")
        self.name = name
        self.app: Celery = app if app is not None else _app_from_env()
        self.storage = self._storage_config("storage", storage)
        self.worker_storage = self._storage_config("worker_storage", worker_storage)
        self.ship_options = bool(ship_options)
        self.routing = _routing("CeleryTaskRunner", {
            "queue": queue, "routing_key": routing_key, "exchange": exchange, "priority": priority,
            "countdown": countdown, "retry_countdown": retry_countdown,
        })
        self.manager_name = manager
        self.run_lease_ttl = run_lease_ttl
        self.sent: int = 0
        # Sessions this runner sent work for, so join_all() can wait for them.
        self._sessions: weakref.WeakValueDictionary[str, TriggerStorageBackend] = (
            weakref.WeakValueDictionary()
        )
        install(self.app, self, replace=False)

    @staticmethod
    def _storage_config(where: str, config: Mapping[str, Any] | None) -> dict[str, Any] | None:
        if config is None:
            return None
        if not isinstance(config, Mapping) or not isinstance(config.get("backend"), str):
            raise ConfigurationError(f"{where} must be {{'backend': NAME, 'options': {{...}}}}, not {config!r}")
        unknown = set(config) - {"backend", "options"}
        if unknown:
            raise ConfigurationError(f"{where} has unknown keys {sorted(unknown)}")
        options = config.get("options") or {}
        if not isinstance(options, Mapping):
            raise ConfigurationError(f"{where}['options'] must be a mapping")
        return {"backend": config["backend"], "options": dict(options)}

    # ------------------------------------------------------------------
    # The sending side
    # ------------------------------------------------------------------

    def routing_for(self, config: TaskConfig) -> dict[str, Any]:
        """The runner's routing with the task's ``celery`` directive over it."""
        where = f"task {config.name!r} directive {DIRECTIVE!r}"
        return {**self.routing, **_routing(where, config.extra.get(DIRECTIVE))}

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        instance = manager.storage[instance_name]
        routing = self.routing_for(instance.config)
        countdown = routing.pop("countdown", None)
        retry_countdown = routing.pop("retry_countdown", None)
        if retry_countdown is not None and int(instance.metadata.get("retries", 0) or 0) > 0:
            countdown = retry_countdown  # a rerun after RetryTask
        message = self.message_for(manager, instance_name, run_leases.attempt_of(instance) + 1)
        self.send(message, countdown=countdown, routing=routing)
        self._sessions[manager.storage.uid] = manager.storage

    def join_all(self, timeout: float | None = None) -> bool:
        """Wait until no session this runner sent work to has an instance scheduled or running.

        The workers' cascades included: they are recorded in the same
        sessions. The sessions are polled through the firing storage
        objects, which must still be open.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        for storage in list(self._sessions.values()):
            left = 365 * 86400.0 if deadline is None else max(0.0, deadline - time.monotonic())
            if not wait_until_idle(storage, left):
                return False
        return True

    def message_for(self, manager: TriggerManager, instance_name: str, attempt: int) -> RunMessage:
        """The message that runs ``instance_name`` of ``manager``'s session on a worker."""
        backend, options = self._selection(manager)
        return RunMessage(backend=backend, options=options if self.ship_options else None,
                          uid=manager.storage.uid, instance=instance_name, attempt=attempt)

    def send(self, message: RunMessage, *, countdown: float | None = None,
             routing: Mapping[str, Any] | None = None) -> None:
        """Publish ``message`` to the broker (what :meth:`run` and a waiting worker call)."""
        options = dict(routing or {})
        if countdown:
            options["countdown"] = countdown
        self.app.send_task(TASK_NAME, args=[message.to_data()], **options)
        self.sent += 1

    def _selection(self, manager: TriggerManager) -> tuple[str, dict[str, Any]]:
        if self.storage is not None:
            return self.storage["backend"], dict(self.storage["options"])
        selection = selection_of(manager.storage)
        if selection is not None:
            return selection
        cls = type(manager.storage)
        for name in storage_backends.names():
            try:
                if storage_backends.load(name) is cls:
                    return name, {}
            except ConfigurationError:
                continue
        raise ConfigurationError(
            f"CeleryTaskRunner: cannot tell workers how to build {cls.__qualname__} storage; build it "
            "with storage_backends.get(NAME, uid, ...) or give the runner storage={'backend': ..., "
            "'options': {...}}"
        )

    # ------------------------------------------------------------------
    # The worker side (see triggers_celery.worker)
    # ------------------------------------------------------------------

    def storage_config_for(self, message: RunMessage) -> dict[str, Any]:
        """``{"backend", "options"}`` a worker builds the message's storage from."""
        if message.options is not None:
            return {"backend": message.backend, "options": dict(message.options)}
        own = self.worker_storage or storage_config_from_env(default=message.backend)
        if own["backend"] != message.backend:
            raise ConfigurationError(
                f"the message names storage backend {message.backend!r} but this worker is "
                f"configured for {own['backend']!r} (worker_storage / TRIGGERS_STORAGE_BACKEND)"
            )
        return own


def install(app: Celery, runner: CeleryTaskRunner, *, replace: bool = True) -> None:
    """Register the worker task on ``app`` and make ``runner`` serve its workers.

    Workers send cascaded instances through this runner and build their
    managers with its settings. Made implicitly by the first runner built
    for ``app``, so a worker that imports the module creating the runner
    (``celery -A proj worker``) has the task.
    """
    from triggers_celery.worker import register_task

    if replace or app not in _RUNNERS:
        _RUNNERS[app] = runner
    named = _NAMED.setdefault(app, {})
    if replace or runner.name not in named:
        named[runner.name] = runner
    register_task(app)


def named_runners(app: Celery) -> dict[str, CeleryTaskRunner]:
    """The runners made for ``app`` by their ``using`` names (what a worker's manager gets)."""
    return {"celery": runner_for_app(app), **_NAMED.get(app, {})}


def runner_for_app(app: Celery) -> CeleryTaskRunner:
    """The runner that serves ``app``'s workers (made on first use if none was)."""
    runner = _RUNNERS.get(app)
    if runner is None:
        runner = CeleryTaskRunner(app)
    return runner

