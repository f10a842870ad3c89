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
from triggers.cli.context import CommandContext, UsageError
from triggers.cli.exchange import (
    MissingSessionError,
    bundle_to_json,
    load_documents,
    read_session,
    write_session,
)
from triggers.cli.output import print_json, wants_json
from triggers.cli.selection import selection_from_args

__all__ = ["register"]


def register(subcommands: Any) -> None:
    export = subcommands.add_parser(
        "export",
        help="write sessions as a versioned JSON document",
        description="Write the whole session (tasks, instances, metadata) as a JSON document "
        '{"format": "triggers-session", "version": 1, ...} that `triggers import` reads; '
        'several UIDs make one bundle {"format": "triggers-sessions", "sessions": [...]}.',
    )
    export.add_argument("uids", nargs="+", metavar="UID", help="the sessions' uids")
    export.add_argument("-o", "--output", metavar="FILE", type=Path,
                        help="write to FILE instead of standard output")
    export.set_defaults(handler=run_export)

    import_ = subcommands.add_parser(
        "import",
        help="store a session from a JSON document",
        description="Store the sessions of a document written by `triggers export` (one session "
        "or a bundle), each in one locked save. A session that already exists under its uid is "
        "left alone unless --replace.",
    )
    import_.add_argument("file", metavar="FILE", help="the document ('-' for standard input)")
    import_.add_argument("--uid", help="store it under this uid instead of the document's "
                         "(a document of one session only)")
    import_.add_argument("--replace", action="store_true",
                         help="overwrite a different session stored under the uid")
    import_.set_defaults(handler=run_import)


def run_export(args: argparse.Namespace, context: CommandContext) -> int:
    uids = list(dict.fromkeys(args.uids))
    selection = selection_from_args(args, context.environ)
    documents = []
    for uid in uids:
        with selection.open_for_reading(uid) as storage:
            document = read_session(storage)
        if document.is_empty:
            raise MissingSessionError(f"session {uid!r} does not exist (nothing is stored under it)")
        documents.append(document)
    data = documents[0].to_json() if len(documents) == 1 else bundle_to_json(documents)
    text = json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n"
    if args.output is None:
        sys.stdout.write(text)
    else:
        args.output.write_text(text, encoding="utf-8")
        if wants_json(args):
            print_json(context, {"exported": uids, "output": str(args.output)})
        else:
            shown = ", ".join(repr(uid) for uid in uids)
            render.say(context.err, f"exported {shown} to {args.output}")
    return 0


def run_import(args: argparse.Namespace, context: CommandContext) -> int:
    if args.file == "-":
        text, source = sys.stdin.read(), "<stdin>"
    else:
        text, source = Path(args.file).read_text(encoding="utf-8"), args.file
    documents = load_documents(text, source)
    if args.uid and len(documents) > 1:
        raise UsageError(f"--uid names one session, and {source} holds {len(documents)}")
    selection = selection_from_args(args, context.environ)
    results: list[dict[str, Any]] = []
    for document in documents:
        uid = args.uid or document.uid
        with selection.open(uid) as storage:
            before = write_session(storage, document, replace=args.replace)
        if before is None:
            outcome = "identical"
        elif before.is_empty:
            outcome = "imported"
        else:
            outcome = "replaced"
        results.append({"uid": uid, "outcome": outcome, "tasks": len(document.tasks),
                        "instances": len(document.instances)})
    if wants_json(args):
        print_json(context, {"sessions": results})
        return 0
    for result in results:
        said = result["outcome"]
        shown = "already identical, nothing written" if said == "identical" else said
        render.say(
            context.out,
            f"session {result['uid']!r}: {shown} ({result['tasks']} tasks, "
            f"{result['instances']} instances)",
        )
    return 0
