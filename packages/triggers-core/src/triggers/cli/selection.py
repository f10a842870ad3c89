"""Which backend a command works on, chosen the way the library chooses it.

``--backend NAME --option key=value ...`` on the command line, or else the
``TRIGGERS_STORAGE_BACKEND`` / ``TRIGGERS_STORAGE_OPTIONS`` environment
variables (:func:`triggers.registry.storage_config_from_env`). Sessions are
then built by :func:`triggers.registry.storage_from_config`, so the command
accepts and refuses exactly the options an application would.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, hide_passwords
from triggers.registry import (
    BACKEND_ENV,
    OPTIONS_ENV,
    storage_backends,
    storage_config_from_env,
    storage_from_config,
)
from triggers.storage import TriggerStorageBackend

__all__ = [
    "SUBCOMMAND",
    "BackendSelection",
    "add_selection_arguments",
    "hide_passwords",
    "overrides",
    "parse_option",
    "selection_from_args",
]

COMMON_OPTIONS = frozenset({"lease_ttl", "lock_timeout", "clock"})
"""Per-session options that the class-level administration hooks ignore."""


@dataclass(frozen=True)
class BackendSelection:
    """A backend's entry-point name and the options its sessions are built with."""

    name: str
    options: Mapping[str, Any] = field(default_factory=dict)

    def open(self, uid: str) -> TriggerStorageBackend:
        """The storage object of session ``uid`` on this backend."""
        return storage_from_config(uid, {"backend": self.name, "options": dict(self.options)})

    def open_for_reading(self, uid: str) -> TriggerStorageBackend:
        """Like :meth:`open`, for commands that only read: they never create a schema.

        Backends create their tables on first use by default, which is right
        for an application and wrong for ``inspect`` or ``export`` pointed at
        the wrong database by a typo. So a backend with a schema check is
        checked first (reading only), and a missing schema is reported as
        :class:`SchemaError` saying how to create it, with nothing created.
        """
        storage_backends.check_options(self.name, uid, **self.options)  # bad options first, by name
        self.check_schema_exists()
        return self.open(uid)

    def check_schema_exists(self) -> None:
        """Raise :class:`SchemaError` (creating nothing) if the backend's schema is missing."""
        cls = self.backend_class()
        if overrides(cls, "check_schema"):
            cls.check_schema(**self.admin_options())

    def backend_class(self) -> type[TriggerStorageBackend]:
        """The backend's class (for ``create_schema``, ``session_uids``...)."""
        return storage_backends.load(self.name)

    def capabilities(self) -> Capabilities:
        """What sessions opened with these options are guaranteed (an in-memory
        database, say, claims less than the backend's class)."""
        return self.backend_class().capabilities_for(**self.admin_options())

    def admin_options(self) -> dict[str, Any]:
        """The options without the per-session ones the class-level hooks do not take."""
        return {key: value for key, value in self.options.items() if key not in COMMON_OPTIONS}

    def describe(self) -> str:
        """``NAME`` plus its options, for messages, with URL passwords masked."""
        if not self.options:
            return self.name
        shown = " ".join(f"{key}={hide_passwords(json.dumps(value))}" for key, value in self.options.items())
        return f"{self.name} ({shown})"


def parse_option(text: str, flag: str = "--option") -> tuple[str, Any]:
    """``key=value`` → ``(key, value)``; the value is JSON when it parses, else the string.

    So ``lease_ttl=5`` gives the number 5, ``create_tables=false`` the boolean,
    and ``url=sqlite:///x.db`` the string.
    """
    key, separator, raw = text.partition("=")
    key = key.strip()
    if not separator or not key:
        raise argparse.ArgumentTypeError(f"{flag} expects key=value, got {text!r}")
    try:
        return key, json.loads(raw)
    except json.JSONDecodeError:
        return key, raw


def add_selection_arguments(
    parser: argparse.ArgumentParser,
    *,
    prefix: str = "",
    required: bool = False,
    role: str = "",
    placement: str = "",
) -> None:
    """Add ``--backend`` and ``--option`` (or ``--PREFIX`` / ``--PREFIX-option``).

    ``placement`` names a second copy of the flags (on a subcommand, so they
    may follow it as well as precede it): their values land in separate
    attributes that :func:`selection_from_args` merges, since argparse would
    otherwise let a subcommand's defaults overwrite the main parser's values.
    """
    backend_flag = f"--{prefix}" if prefix else "--backend"
    option_flag = f"--{prefix}-option" if prefix else "--option"
    dest = f"{placement}{prefix}_backend" if prefix else f"{placement}backend"
    where = f" of the {role}" if role else ""
    default_help = "" if required or prefix else f" (default: ${BACKEND_ENV} with ${OPTIONS_ENV})"
    parser.add_argument(
        backend_flag,
        dest=dest,
        metavar="NAME",
        required=required,
        help=f"entry-point name of the storage backend{where}{default_help}",
    )
    parser.add_argument(
        option_flag,
        dest=f"{dest}_options",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        type=lambda text: parse_option(text, option_flag),
        help=f"backend option{where}, repeatable; VALUE is parsed as JSON when it parses",
    )


SUBCOMMAND = "sub_"
"""``placement`` of the selection flags repeated on every subcommand."""


def selection_from_args(
    args: argparse.Namespace, environ: Mapping[str, str], *, prefix: str = ""
) -> BackendSelection:
    """The selection made by the ``--backend``/``--option`` flags, else by the environment.

    Flags given after the subcommand win over those given before it; options
    from both are merged. ``--option`` values are added to the environment's
    options when only the environment names the backend (the conformance
    plugin does the same).
    """
    dest = f"{prefix}_backend" if prefix else "backend"
    name: str | None = getattr(args, SUBCOMMAND + dest, None) or getattr(args, dest, None)
    pairs: list[tuple[str, Any]] = [
        *getattr(args, f"{dest}_options", []),
        *getattr(args, f"{SUBCOMMAND}{dest}_options", []),
    ]
    if name:
        return BackendSelection(name, dict(pairs))
    if prefix:
        raise ConfigurationError(f"--{prefix} NAME is required")
    try:
        config = storage_config_from_env(environ)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{exc} (or pass --backend NAME)") from None
    return BackendSelection(config["backend"], {**config["options"], **dict(pairs)})


def overrides(cls: type[TriggerStorageBackend], hook: str) -> bool:
    """True if the backend class implements the administration ``hook`` itself."""
    return cls.administers(hook)
