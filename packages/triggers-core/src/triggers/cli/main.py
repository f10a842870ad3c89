"""The entry point: the parser, the command table, and how errors end a command.

Every command module has ``register(subcommands)``, which adds its parsers
and sets ``handler`` (``handler(args, context) -> exit status``). Errors are
the operator's business, not the programmer's: bad arguments print the usage
and exit 2; a refused operation or an unreachable store prints one line,
``triggers: error: ...``, and exits 1. ``--debug`` shows the traceback too.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Mapping, Sequence

from rich.console import Console

import triggers
from triggers.cli.context import CommandContext, Handler, UsageError
from triggers.cli.render import printable
from triggers.errors import ConfigurationError, TriggersError

__all__ = ["CommandContext", "UsageError", "build_parser", "main"]

PROG = "triggers"

IMPORT_ENV = "TRIGGERS_IMPORT"
"""Modules (comma-separated) the command imports before it runs, for their registrations."""

DESCRIPTION = """\
Inspect, repair, copy and check Triggers sessions in any installed storage backend.

Every command that works on sessions selects the backend as the library does:
--backend NAME with --option key=value (repeatable; values are JSON when they
parse), or else the TRIGGERS_STORAGE_BACKEND and TRIGGERS_STORAGE_OPTIONS
(a JSON object) environment variables. TRIGGERS_IMPORT names modules
(comma-separated) to import first, so the backends and runners they register
in code (task_runners.register) are known to every command.
"""

EPILOG = """\
examples:
  triggers backends
  triggers --backend sql --option url=sqlite:///triggers.db inspect survey-42
  triggers --backend sql --option url=sqlite:///triggers.db fire survey-42 pageReceived --kwargs '{"page": 2}'
  triggers migrate --from sql --from-option url=sqlite:///old.db --to sql --to-option url=postgresql+psycopg://db/app --all

exit status: 0 success, 1 the operation failed (one line on stderr), 2 bad arguments.
"""


class _Parser(argparse.ArgumentParser):
    """argparse, with errors in the ``triggers: error: ...`` shape (exit status 2)."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{PROG}: error: {message}\n")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line, with every command module's subcommands."""
    from triggers.cli import (
        backends,
        conformance,
        inspection,
        listing,
        migrate,
        operations,
        schema,
        transfer,
    )
    from triggers.cli.output import add_json_flag
    from triggers.cli.selection import SUBCOMMAND, add_selection_arguments

    parser = _Parser(
        prog=PROG,
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {triggers.__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks and debug logs on errors")
    add_selection_arguments(parser)
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    subcommands.required = True
    for module in (backends, inspection, listing, operations, transfer, migrate, schema, conformance):
        module.register(subcommands)
    for name, subparser in subcommands.choices.items():
        if name not in ("migrate", "conformance"):  # they name their backends themselves
            add_selection_arguments(subparser, placement=SUBCOMMAND)
        if name != "conformance":  # its output is pytest's own
            add_json_flag(subparser)
    return parser


def main(argv: Sequence[str] | None = None, *, environ: Mapping[str, str] | None = None) -> int:
    """Run one ``triggers`` command; returns the exit status.

    ``environ`` replaces ``os.environ`` as the source of the ``TRIGGERS_*``
    selection variables (``manage.py triggers`` passes the project's settings
    this way, without touching the process environment).
    """
    parser = build_parser()
    arguments = list(sys.argv[1:] if argv is None else argv)
    passed_on: list[str] = []
    if "--" in arguments and "conformance" in arguments[: arguments.index("--")]:
        # argparse mishandles '--' inside a subcommand: split pytest's arguments off here.
        split = arguments.index("--")
        arguments, passed_on = arguments[:split], arguments[split + 1 :]
    try:
        args = parser.parse_args(arguments)
    except SystemExit as exit_:  # --help, --version, bad arguments
        return exit_.code if isinstance(exit_.code, int) else 2
    if passed_on:
        args.pytest_args = [*getattr(args, "pytest_args", []), *passed_on]
    logging.basicConfig(
        level=logging.DEBUG if args.debug else logging.WARNING,
        format=f"{PROG}: %(levelname)s: %(name)s: %(message)s",
    )
    context = CommandContext(out=Console(), err=Console(stderr=True),
                             environ=os.environ if environ is None else environ)
    handler: Handler = args.handler
    try:
        _import_configured_modules(context.environ)
        return handler(args, context)
    except UsageError as exc:
        print(f"{PROG} {args.command}: error: {printable(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except (TriggersError, ValueError, TypeError, LookupError, OSError) as exc:
        return _fail(exc, args.debug, expected=True)
    except Exception as exc:
        return _fail(exc, args.debug, expected=False)


def _import_configured_modules(environ: Mapping[str, str]) -> None:
    """Import the modules ``TRIGGERS_IMPORT`` names (an application's registrations)."""
    import importlib

    for name in filter(None, (part.strip() for part in environ.get(IMPORT_ENV, "").split(","))):
        try:
            importlib.import_module(name)
        except Exception as exc:
            raise ConfigurationError(f"{IMPORT_ENV} names {name!r}, which cannot be imported: "
                                     f"{type(exc).__name__}: {exc}") from exc


def _fail(exc: BaseException, debug: bool, *, expected: bool) -> int:
    """One line on stderr (the whole traceback with ``--debug``); exit status 1.

    Drivers quote URLs in their errors; any password in one is masked.
    """
    from triggers.cli.selection import hide_passwords

    if debug:
        logging.getLogger(__name__).error("the command failed", exc_info=exc)
    message = " ".join(str(exc).split()) or type(exc).__name__
    if not expected:
        message = f"unexpected {type(exc).__name__}: {message} (run with --debug for the traceback)"
    elif isinstance(exc, OSError) and not isinstance(exc, TriggersError) and exc.filename:
        message = f"{exc.filename}: {exc.strerror or message}"
    print(f"{PROG}: error: {printable(hide_passwords(message))}", file=sys.stderr)
    return 1
