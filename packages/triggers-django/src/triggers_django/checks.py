"""System checks (``manage.py check``): the Triggers settings, before a fire fails.

| id | level | what |
| --- | --- | --- |
| ``triggers_django.E001`` | error | ``settings.TRIGGERS`` is malformed |
| ``triggers_django.E002`` | error | the storage backend is not installed (names the installed ones) |
| ``triggers_django.E003`` | error | the backend, or its driver, cannot be imported (says what to ``pip install``) |
| ``triggers_django.E004`` | error | the storage options are refused (unknown option, bad value, unknown database alias) |
| ``triggers_django.E005`` | error | the runner or manager named is not installed |
| ``triggers_django.W001`` | warning | the store does not answer, or answers without the tables |

The last one talks to the store, so, like Django's own database checks, it
runs only when databases are asked for: ``manage.py check --database default``
(and ``migrate``), never on every ``runserver`` start.
"""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Tags, Warning, register

from triggers.cli.backends import probe
from triggers.cli.selection import BackendSelection
from triggers.errors import BackendNotFoundError, ConfigurationError, TriggersError
from triggers.registry import storage_backends, task_runners, trigger_managers
from triggers_django.conf import SETTING, TriggersSettings, triggers_settings

__all__ = ["check_settings", "check_store_answers"]

PROBE_TIMEOUT = 5.0
"""Seconds the store has to answer the W001 probe."""


def _settings(errors: list[CheckMessage]) -> TriggersSettings | None:
    try:
        return triggers_settings()
    except ConfigurationError as exc:
        errors.append(Error(str(exc), hint=f"See settings.{SETTING} in the triggers-django README.",
                            id="triggers_django.E001"))
        return None


@register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """E001-E005: the settings name installed, importable, accepted things."""
    errors: list[CheckMessage] = []
    settings = _settings(errors)
    if settings is None:
        return errors
    if settings.backend not in storage_backends.names():
        errors.append(Error(
            f"settings.{SETTING}['STORAGE']['backend'] is {settings.backend!r}, which is not an "
            f"installed storage backend (installed: {', '.join(storage_backends.names())})",
            hint=f"pip install triggers-{settings.backend}, or correct the name",
            id="triggers_django.E002",
        ))
        return errors
    try:
        storage_backends.load(settings.backend)
    except BackendNotFoundError as exc:
        errors.append(Error(str(exc), hint="install the backend's driver (its README names the extra)",
                            id="triggers_django.E003"))
        return errors
    try:
        config = settings.storage_config()
        storage_backends.check_options(config["backend"], "triggers-check", **config["options"])
    except ConfigurationError as exc:
        errors.append(Error(str(exc), id="triggers_django.E004"))
    except ImportError as exc:
        errors.append(Error(f"a driver of the {settings.backend!r} storage cannot be imported: {exc}",
                            hint=f"pip install the driver ({exc.name or 'see the backend README'})",
                            id="triggers_django.E003"))
    else:
        missing = missing_driver(settings.backend, config["options"])
        if missing is not None:
            errors.append(Error(missing[0], hint=missing[1], id="triggers_django.E003"))
    for kind, registry, name in (("RUNNER", task_runners, settings.runner),
                                 ("MANAGER", trigger_managers, settings.manager)):
        if name is None:
            continue
        try:
            registry.load(name)
        except TriggersError as exc:
            errors.append(Error(f"settings.{SETTING}[{kind!r}]: {exc}", id="triggers_django.E005"))
    return errors


_CACHE_DRIVERS = {
    "django.core.cache.backends.redis.RedisCache": ("redis", "triggers-cache[redis]"),
    "django_redis.cache.RedisCache": ("django_redis", "triggers-cache[django-redis]"),
    "django.core.cache.backends.memcached.PyMemcacheCache": ("pymemcache", "triggers-cache[memcached]"),
    "django.core.cache.backends.memcached.PyLibMCCache": ("pylibmc", "pylibmc"),
}
"""Django cache backends and the driver module each imports when it connects."""

_SQL_EXTRAS = {"postgresql": "triggers-sql[postgresql]", "mysql": "triggers-sql[mysql]"}


def missing_driver(backend: str, options: dict[str, Any]) -> tuple[str, str] | None:
    """``(message, hint)`` when the store's driver cannot be imported, without connecting.

    Drivers are imported only when a backend first connects, so a project
    without ``psycopg`` or ``redis`` would otherwise learn of it at its
    first fire in production.
    """
    import importlib

    if backend == "sql" and isinstance(options.get("url"), str):
        from sqlalchemy.engine import make_url

        url = make_url(options["url"])
        try:
            url.get_dialect().import_dbapi()
        except ImportError as exc:
            extra = _SQL_EXTRAS.get(url.get_backend_name(), exc.name or "the driver")
            return (f"the sql storage's driver for {url.drivername!r} cannot be imported: {exc}",
                    f"pip install '{extra}'")
    if backend == "cache":
        from django.conf import settings

        alias = options.get("cache", "default")
        configured = settings.CACHES.get(alias, {}) if isinstance(alias, str) else {}
        driver = _CACHE_DRIVERS.get(str(configured.get("BACKEND", "")))
        if driver is not None:
            try:
                importlib.import_module(driver[0])
            except ImportError as exc:
                return (f"cache {alias!r} ({configured['BACKEND']}) needs {driver[0]!r}, which "
                        f"cannot be imported: {exc}", f"pip install '{driver[1]}'")
    return None


@register(Tags.database)
def check_store_answers(app_configs: Any = None, databases: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """W001: the store answers and has its tables (reading only, within a timeout).

    Like Django's own database checks, it runs only when databases were asked
    for (``check --database ALIAS``, ``migrate``): a check that may wait on
    the network has no place in every ``runserver`` start.
    """
    if not databases:
        return []
    errors: list[CheckMessage] = []
    settings = _settings(errors)
    if settings is None or check_settings():
        return []  # the settings checks report what is wrong first
    config = settings.storage_config()
    selection = BackendSelection(config["backend"], config["options"])
    outcome = probe(selection, storage_backends.load(selection.name), PROBE_TIMEOUT)
    if outcome == "answers":
        return []
    return [Warning(
        f"the Triggers storage ({selection.describe()}) {outcome}",
        hint="start the store, correct its options, or create the tables with "
        "`manage.py migrate` / `manage.py triggers schema create`",
        id="triggers_django.W001",
    )]
