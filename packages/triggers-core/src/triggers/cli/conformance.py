"""``triggers conformance NAME``: the conformance suite against an installed backend.

Runs ``pytest --pyargs triggers_conformance --triggers-backend NAME
--triggers-option key=value ...`` in a subprocess (the suite forks and
starts servers; it must not share this process), streams its output, which
ends with the capability report, and exits with pytest's status.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import shlex
import subprocess
import sys
from typing import Any

from triggers.cli import render
from triggers.cli.context import CommandContext
from triggers.cli.selection import hide_passwords, parse_option
from triggers.errors import TriggersError
from triggers.registry import storage_backends

__all__ = ["pytest_command", "register"]


class ConformanceNotInstalledError(TriggersError):
    """The suite's distribution, triggers-conformance, is not installed."""


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "conformance",
        help="run the conformance suite against an installed backend",
        description="Run the conformance suite (distribution triggers-conformance) against "
        "backend NAME with the given options, and print its capability report. Arguments "
        "after '--' go to pytest (e.g. -- -x -k lock). Exits with pytest's status.",
    )
    parser.add_argument("name", metavar="NAME", help="entry-point name of the backend")
    parser.add_argument(
        "--option",
        dest="conformance_options",
        metavar="KEY=VALUE",
        action="append",
        default=[],
        type=parse_option,
        help="backend option, repeatable; VALUE is parsed as JSON when it parses",
    )
    parser.add_argument("pytest_args", nargs="*", metavar="-- PYTEST_ARG",
                        help="extra pytest arguments, after '--'")
    parser.set_defaults(handler=run)


def pytest_command(name: str, options: dict[str, Any], extra: list[str]) -> list[str]:
    """The pytest command line that runs the suite on backend ``name``."""
    command = [sys.executable, "-m", "pytest", "--pyargs", "triggers_conformance",
               "-p", "no:cacheprovider", "--triggers-backend", name]
    for key, value in options.items():
        command += ["--triggers-option", f"{key}={json.dumps(value)}"]
    return command + extra


def run(args: argparse.Namespace, context: CommandContext) -> int:
    if importlib.util.find_spec("triggers_conformance") is None:
        raise ConformanceNotInstalledError(
            "the conformance suite is not installed: pip install triggers-conformance"
        )
    storage_backends.load(args.name)  # an unknown name fails here, listing the installed ones
    options = {**dict(args.backend_options), **dict(args.conformance_options)}
    command = pytest_command(args.name, options, list(args.pytest_args))
    render.say(context.err, f"running: {hide_passwords(shlex.join(command))}", soft_wrap=True)
    sys.stdout.flush()
    return subprocess.run(command, check=False).returncode
