"""``triggers migrate``: copy sessions from one backend to another.

For teams moving stores (cache → sql when they move off Redis, say). Each
session is read in one load, written to the destination in one locked save
(:func:`~triggers.cli.exchange.write_session`), then reloaded from the
destination and compared with the source: a copy is only counted once it
verified. Runs are resumable: a session already identical at the destination
is skipped, so an interrupted run is simply started again. A destination
session that differs is left alone (and reported) unless ``--replace``.

Sessions that change while they are copied are copied as one of their saved
states; stop the writers (or run again afterwards: the changed ones are
reported as different) for an exact cut-over.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from triggers.cli import render
from triggers.cli.context import CommandContext, UsageError
from triggers.cli.exchange import read_session, write_session
from triggers.cli.output import print_json, wants_json
from triggers.cli.selection import (
    BackendSelection,
    add_selection_arguments,
    hide_passwords,
    selection_from_args,
)
from triggers.errors import TriggersError

__all__ = ["MigrationReport", "migrate_sessions", "register"]


@dataclass
class MigrationReport:
    """What happened to each session of a migration."""

    copied: list[str] = field(default_factory=list)
    identical: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "migrate",
        help="copy sessions between backends (resumable, verified)",
        description="Copy sessions from the --from backend to the --to backend. Each copy is "
        "verified by reloading it from the destination; sessions already identical there are "
        "skipped, so an interrupted migration is resumed by running it again.",
    )
    add_selection_arguments(parser, prefix="from", required=True, role="source")
    add_selection_arguments(parser, prefix="to", required=True, role="destination")
    parser.add_argument("uids", nargs="*", metavar="UID", help="sessions to copy")
    parser.add_argument("--all", action="store_true",
                        help="copy every session of the source (the backend must list its sessions)")
    parser.add_argument("--replace", action="store_true",
                        help="overwrite destination sessions that differ from the source")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace, context: CommandContext) -> int:
    if args.backend or args.backend_options:
        raise UsageError("migrate selects its backends with --from/--from-option and --to/--to-option")
    if args.all == bool(args.uids):
        raise UsageError("name the sessions to copy (UID ...) or pass --all, not both")
    source = selection_from_args(args, context.environ, prefix="from")
    destination = selection_from_args(args, context.environ, prefix="to")
    if source == destination:
        raise UsageError("the source and the destination are the same store")
    if not destination.capabilities().shared_state:
        raise UsageError(
            f"{destination.describe()} keeps sessions only inside the process that writes "
            "them, so every copy would be lost when this command ends; migrate to a store that "
            "outlives it"
        )
    source.check_schema_exists()  # reading the source never creates its tables
    uids = list(_all_uids(source)) if args.all else list(dict.fromkeys(args.uids))
    with Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=context.err,
        transient=False,
    ) as progress:
        bar = progress.add_task(escape(render.printable(f"{source.name} → {destination.name}")),
                                total=len(uids))
        report = migrate_sessions(source, destination, uids, replace=args.replace,
                                  advance=lambda: progress.advance(bar))
    if wants_json(args):
        print_json(context, {
            "sessions": len(uids),
            "copied": report.copied,
            "identical": report.identical,
            "failed": [{"uid": uid, "reason": reason} for uid, reason in report.failed.items()],
        })
        return 1 if report.failed else 0
    render.say(
        context.out,
        f"{len(uids)} sessions: {len(report.copied)} copied, {len(report.identical)} already "
        f"identical, {len(report.failed)} failed",
    )
    for uid, reason in report.failed.items():
        render.say(context.out, f"  failed {uid!r}: {reason}", soft_wrap=True)
    return 1 if report.failed else 0


def _all_uids(source: BackendSelection) -> Iterable[str]:
    try:
        return list(source.backend_class().session_uids(**source.admin_options()))
    except NotImplementedError:
        raise UsageError(
            f"backend {source.name!r} cannot list its sessions, so --all cannot be used with it; "
            "name the sessions to copy"
        ) from None


def migrate_sessions(
    source: BackendSelection,
    destination: BackendSelection,
    uids: Iterable[str],
    *,
    replace: bool = False,
    advance: Callable[[], object] | None = None,
) -> MigrationReport:
    """Copy each session and verify it; one session's failure does not stop the others."""
    report = MigrationReport()
    for uid in uids:
        try:
            outcome = _copy(source, destination, uid, replace=replace)
        except (TriggersError, ValueError, TypeError, LookupError, OSError) as exc:
            report.failed[uid] = hide_passwords(" ".join(str(exc).split()) or type(exc).__name__)
        else:
            (report.copied if outcome == "copied" else report.identical).append(uid)
        if advance is not None:
            advance()
    return report


def _copy(source: BackendSelection, destination: BackendSelection, uid: str, *, replace: bool) -> str:
    with source.open(uid) as storage:
        document = read_session(storage)
    if document.is_empty:
        raise LookupError(f"session {uid!r} does not exist at the source")
    with destination.open(uid) as storage:
        before = write_session(storage, document, replace=replace)
    if before is None:
        return "identical"
    with destination.open(uid) as storage:
        copied = read_session(storage)
    if copied.content() != document.content():
        raise TriggersError(
            f"session {uid!r}: the copy read back from {destination.name} differs from the source"
        )
    return "copied"
