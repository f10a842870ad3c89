"""``triggers backends``: what is installed, what it claims, whether its server answers."""

from __future__ import annotations

import argparse
import threading
from dataclasses import asdict, dataclass
from typing import Any

from rich.table import Table

from triggers.cli import render
from triggers.cli.context import CommandContext
from triggers.cli.output import camel_case_keys, print_json
from triggers.cli.render import capabilities_text
from triggers.cli.selection import (
    BackendSelection,
    hide_passwords,
    overrides,
    selection_from_args,
)
from triggers.errors import ConfigurationError, SchemaError, TriggersError
from triggers.registry import BACKEND_ENV, storage_backends
from triggers.storage import TriggerStorageBackend

__all__ = ["BackendStatus", "probe", "register"]

PROBE_UID = "triggers-cli-probe"
"""The session a probe loads (and never saves) on backends without a schema check."""


@dataclass
class BackendStatus:
    """One row of ``triggers backends``."""

    name: str
    distribution: str
    version: str
    backend_class: str
    capabilities: str
    server: str
    """``answers``, ``not probed``, or the reason it does not answer."""


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "backends",
        help="list installed storage backends and probe the selected one's server",
        description="List every storage backend installed (entry-point group "
        "'triggers.storage_backends') with its distribution, version and capabilities. The "
        f"backend selected with --backend/--option (or ${BACKEND_ENV}) is probed: a cheap "
        "schema check or load, abandoned after --timeout seconds.",
    )
    parser.add_argument("--timeout", type=float, default=5.0, metavar="SECONDS",
                        help="how long the probe may wait for the server (default 5)")
    parser.add_argument("--json", action="store_true", help="print a JSON list instead of a table")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, context: CommandContext) -> int:
    selected: BackendSelection | None = None
    if args.backend or context.environ.get(BACKEND_ENV):
        selected = selection_from_args(args, context.environ)
        storage_backends.load(selected.name)  # an unknown name is an error, listing the installed
    rows = [
        _status(name, selected if selected and selected.name == name else None, args.timeout)
        for name in storage_backends.names()
    ]
    if args.json:
        print_json(context, [camel_case_keys(asdict(row)) for row in rows])
    else:
        table = Table(title="Storage backends", title_justify="left")
        for column in ("name", "distribution", "version"):
            table.add_column(column, no_wrap=True)
        table.add_column("capabilities", ratio=3)
        table.add_column("server", ratio=2, overflow="fold")
        for row in rows:
            style = ("green" if row.server.startswith("answers")
                     else "dim" if row.server == "not probed" else "red")
            table.add_row(render.plain(row.name), render.plain(row.distribution),
                          render.plain(row.version), render.plain(row.capabilities),
                          render.plain(row.server, style))
        context.out.print(table)
    failed = [row for row in rows if not row.server.startswith(("answers", "not probed"))]
    return 1 if failed else 0


def _status(name: str, selection: BackendSelection | None, timeout: float) -> BackendStatus:
    distribution, version = storage_backends.distribution(name) or ("(registered at run time)", "")
    try:
        cls = storage_backends.load(name)
    except TriggersError as exc:
        return BackendStatus(name, distribution, version, "", "", f"cannot be imported: {exc}")
    server = "not probed" if selection is None else probe(selection, cls, timeout)
    return BackendStatus(
        name, distribution, version, f"{cls.__module__}.{cls.__qualname__}",
        capabilities_text(cls.capabilities), server,
    )


def probe(selection: BackendSelection, cls: type[TriggerStorageBackend], timeout: float) -> str:
    """``"answers"`` or why not, within ``timeout`` seconds whatever the driver does.

    A backend with a schema is asked to check it (which reads, never
    creates); any other loads a probe session, which writes nothing. The
    probe runs in a daemon thread, so a server that never answers cannot keep
    the command waiting (or alive) past the timeout.
    """
    outcome: list[str] = []

    def attempt() -> None:
        try:
            if overrides(cls, "check_schema"):
                cls.check_schema(**selection.admin_options())
            else:
                with selection.open(PROBE_UID) as storage:
                    storage.invalidate_cache()
                    _ = storage.tasks
            outcome.append("answers")
        except SchemaError as exc:
            outcome.append(f"answers, but {_one_line(exc)}")
        except ConfigurationError as exc:
            outcome.append(f"not usable as configured: {_one_line(exc)}")
        except Exception as exc:
            outcome.append(f"does not answer: {_one_line(exc)}")

    thread = threading.Thread(target=attempt, name=f"probe-{selection.name}", daemon=True)
    thread.start()
    thread.join(timeout)
    return outcome[0] if outcome else f"does not answer within {timeout:g} s"


def _one_line(exc: BaseException) -> str:
    return hide_passwords(" ".join(str(exc).split()) or type(exc).__name__)
