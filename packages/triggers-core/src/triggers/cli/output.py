"""Machine-readable output: ``--json`` on every command, in one key style.

Scripts drive the ``triggers`` command as much as people do, so every
command accepts ``--json`` and then prints exactly one JSON value (an
object, or a list for ``backends``) on standard
output (the human-readable lines go away; errors still go to standard error
with the exit status saying what happened). Keys are camelCase, as in the
stored records and the session document (``unresolvedTasks``,
``backendClass``), so a script sees one vocabulary whichever command it ran.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from triggers.cli.context import CommandContext

__all__ = ["add_json_flag", "camel_case_keys", "print_json", "wants_json"]


def add_json_flag(parser: argparse.ArgumentParser) -> None:
    """Give ``parser`` the ``--json`` flag unless the command defined its own."""
    if not any("--json" in action.option_strings for action in parser._actions):
        parser.add_argument("--json", action="store_true",
                            help="print one JSON value on standard output instead of text")


def wants_json(args: argparse.Namespace) -> bool:
    """True when the command was run with ``--json``."""
    return bool(getattr(args, "json", False))


def print_json(context: CommandContext, value: Any) -> None:
    """Print ``value`` as indented JSON, never interpreted as Rich markup.

    ``json.dumps`` escapes every control character (as ``\\u001b`` and the
    like), so stored text cannot reach the terminal raw through this path.
    """
    context.out.out(json.dumps(value, indent=2, ensure_ascii=False), highlight=False)


_WORD_BREAK = re.compile(r"_([a-z0-9])")


def camel_case_keys(record: dict[str, Any]) -> dict[str, Any]:
    """``{"backend_class": ...}`` as ``{"backendClass": ...}`` (one level deep)."""
    return {_WORD_BREAK.sub(lambda match: match.group(1).upper(), key): value
            for key, value in record.items()}
