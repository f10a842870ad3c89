"""``settings.TRIGGERS``: which storage, runner and manager a Django project uses.

One setting, read when it is used (never at import), so tests can override
it with Django's ``override_settings``::

    TRIGGERS = {
        "STORAGE": {"backend": "sql", "options": {"database": "default"}},
        "RUNNER": "eager",      # a triggers.runners entry point (optional)
        "MANAGER": "default",   # a triggers.managers entry point (optional)
    }

Without the setting, the storage is the ``sql`` backend on the project's
``default`` database: the store a Django project already runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings

from triggers.errors import ConfigurationError
from triggers_django.databases import resolve_storage_options

__all__ = ["DEFAULT_STORAGE", "SETTING", "TriggersSettings", "triggers_settings"]

SETTING = "TRIGGERS"
"""The name of the Django setting."""

DEFAULT_STORAGE: Mapping[str, Any] = {"backend": "sql", "options": {"database": "default"}}
"""The storage used when ``TRIGGERS["STORAGE"]`` is not set."""

_KEYS = frozenset({"STORAGE", "RUNNER", "MANAGER"})


@dataclass(frozen=True)
class TriggersSettings:
    """The checked contents of ``settings.TRIGGERS``."""

    backend: str
    options: Mapping[str, Any] = field(default_factory=dict)
    runner: str | None = None
    manager: str | None = None

    def storage_config(self) -> dict[str, Any]:
        """``{"backend", "options"}`` for :func:`triggers.registry.storage_from_config`,
        with Django database aliases turned into the backend's own options."""
        return {"backend": self.backend, "options": resolve_storage_options(self.backend, self.options)}

    def manager_config(self) -> dict[str, str]:
        """``{"manager", "runner"}`` for :func:`triggers.registry.manager_from_config`."""
        return {key: value for key, value in (("manager", self.manager), ("runner", self.runner)) if value}


def triggers_settings() -> TriggersSettings:
    """Read and check ``settings.TRIGGERS``; a ConfigurationError names what is wrong."""
    raw = getattr(settings, SETTING, None)
    if raw is None:
        raw = {}
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"settings.{SETTING} must be a dict, not {type(raw).__name__}")
    unknown = sorted(set(raw) - _KEYS)
    if unknown:
        raise ConfigurationError(
            f"settings.{SETTING} has unknown keys {unknown}; it takes {sorted(_KEYS)}"
        )
    storage = raw.get("STORAGE", DEFAULT_STORAGE)
    if not isinstance(storage, Mapping):
        raise ConfigurationError(
            f"settings.{SETTING}['STORAGE'] must be a dict like {dict(DEFAULT_STORAGE)}, "
            f"not {type(storage).__name__}"
        )
    extra = sorted(set(storage) - {"backend", "options"})
    if extra:
        raise ConfigurationError(
            f"settings.{SETTING}['STORAGE'] has unknown keys {extra}; it takes 'backend' and 'options'"
        )
    backend = storage.get("backend")
    if not isinstance(backend, str) or not backend:
        raise ConfigurationError(
            f"settings.{SETTING}['STORAGE']['backend'] must name a storage backend "
            f"(an entry point of triggers.storage_backends), not {backend!r}"
        )
    options = storage.get("options") or {}
    if not isinstance(options, Mapping) or not all(isinstance(key, str) for key in options):
        raise ConfigurationError(f"settings.{SETTING}['STORAGE']['options'] must be a dict of str keys")
    names: dict[str, str | None] = {}
    for key in ("RUNNER", "MANAGER"):
        value = raw.get(key)
        if value is not None and (not isinstance(value, str) or not value):
            raise ConfigurationError(f"settings.{SETTING}[{key!r}] must be an entry-point name, not {value!r}")
        names[key] = value
    return TriggersSettings(backend, dict(options), runner=names["RUNNER"], manager=names["MANAGER"])
