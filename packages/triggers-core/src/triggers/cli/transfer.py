"""``triggers export`` and ``triggers import``: a session as a JSON document.

The document format is :mod:`triggers.cli.exchange`'s; an export can be
imported into any backend, under the same uid or another one.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from triggers.cli import render
from triggers.cli.exchange import MissingSessionError, load_document, read_session, write_session
from triggers.cli.main import CommandContext
from triggers.cli.selection import selection_from_args

__all__ = ["register"]


def register(subcommands: Any) -> None:
    export = subcommands.add_parser(
        "export",
        help="write a session as a versioned JSON document",
        description="Write the whole session (tasks, instances, metadata) as a JSON document "
        '{"format": "triggers-session", "version": 1, ...} that `triggers import` reads.',
    )
    export.add_argument("uid", metavar="UID", help="the session's uid")
    export.add_argument("-o", "--output", metavar="FILE", type=Path,
                        help="write to FILE instead of standard output")
    export.set_defaults(handler=run_export)

    import_ = subcommands.add_parser(
        "import",
        help="store a session from a JSON document",
        description="Store the session of a document written by `triggers export`, in one locked "
        "save. A session that already exists under the uid is left alone unless --replace.",
    )
    import_.add_argument("file", metavar="FILE", help="the document ('-' for standard input)")
    import_.add_argument("--uid", help="store it under this uid instead of the document's")
    import_.add_argument("--replace", action="store_true",
                         help="overwrite a different session stored under the uid")
    import_.set_defaults(handler=run_import)


def run_export(args: argparse.Namespace, context: CommandContext) -> int:
    selection = selection_from_args(args, context.environ)
    with selection.open(args.uid) as storage:
        document = read_session(storage)
    if document.is_empty:
        raise MissingSessionError(f"session {args.uid!r} does not exist (nothing is stored under it)")
    text = json.dumps(document.to_json(), indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        render.say(context.err, f"exported {args.uid!r} to {args.output}")
    return 0


def run_import(args: argparse.Namespace, context: CommandContext) -> int:
    if args.file == "-":
        text, source = sys.stdin.read(), "<stdin>"
    else:
        text, source = Path(args.file).read_text(encoding="utf-8"), args.file
    document = load_document(text, source)
    uid = args.uid or document.uid
    selection = selection_from_args(args, context.environ)
    with selection.open(uid) as storage:
        before = write_session(storage, document, replace=args.replace)
    if before is None:
        outcome = "already identical, nothing written"
    elif before.is_empty:
        outcome = "imported"
    else:
        outcome = "replaced"
    render.say(
        context.out,
        f"session {uid!r}: {outcome} ({len(document.tasks)} tasks, "
        f"{len(document.instances)} instances)",
    )
    return 0
