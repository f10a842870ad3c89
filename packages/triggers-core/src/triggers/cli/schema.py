"""``triggers schema create|check``: a backend's tables and indexes, for operators.

Teams that manage DDL themselves turn a backend's automatic creation off
(``create_tables=false`` on ``sql``) and run ``triggers schema create`` once
per deployment. Backends without a schema say so.
"""

from __future__ import annotations

import argparse
from typing import Any

from triggers.cli import render
from triggers.cli.context import CommandContext
from triggers.cli.output import print_json, wants_json
from triggers.cli.selection import overrides, selection_from_args

__all__ = ["register"]


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "schema",
        help="create or check the selected backend's tables and indexes",
        description="Create (idempotent) or check the tables, indexes or collections of the "
        "backend selected with --backend/--option. `check` exits 1 when they are missing or "
        "were made by another version.",
    )
    parser.add_argument("action", choices=("create", "check"), help="what to do")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, context: CommandContext) -> int:
    selection = selection_from_args(args, context.environ)
    cls = selection.backend_class()
    hook = cls.create_schema if args.action == "create" else cls.check_schema
    if not overrides(cls, f"{args.action}_schema"):
        if wants_json(args):
            print_json(context, {"backend": selection.name, "action": args.action, "objects": [],
                                 "hasSchema": False})
            return 0
        render.say(context.out, f"{selection.name}: this backend has no tables or indexes to "
                   f"{args.action}; nothing to do")
        return 0
    lines = hook(**selection.admin_options())
    if wants_json(args):
        print_json(context, {"backend": selection.name, "action": args.action, "objects": lines,
                             "hasSchema": True})
        return 0
    for line in lines:
        render.say(context.out, f"{selection.name}: {line}")
    verb = "created or found" if args.action == "create" else "checked, up to date"
    render.say(context.out, f"{selection.name}: schema {verb}")
    return 0
