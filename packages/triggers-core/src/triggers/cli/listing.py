"""``triggers list``: the sessions of a backend and the work each leaves unresolved.

For an operator's first look ("which sessions have failed or stuck
instances?"): one row per session with its unresolved instances counted by
status, its instances whose run lease ended (their worker died; ``triggers
resume`` hands them on) and its unresolved logs. Only unresolved work is
loaded, so the command stays cheap on sessions with long histories.
"""

from __future__ import annotations

import argparse
from typing import Any

from rich.table import Table

from triggers import run_leases
from triggers.cli import render
from triggers.cli.context import CommandContext, UsageError
from triggers.cli.inspection import _positive
from triggers.cli.output import print_json, wants_json
from triggers.cli.selection import BackendSelection, selection_from_args
from triggers.types import InstanceStatus

__all__ = ["UNRESOLVED_STATUSES", "register", "session_summary"]

UNRESOLVED_STATUSES = (InstanceStatus.UNSTARTED, InstanceStatus.SCHEDULED, InstanceStatus.RUNNING,
                       InstanceStatus.FAILED)
"""The statuses an unresolved instance can have (the columns of the listing)."""


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "list",
        help="list the backend's sessions with their unresolved instances and logs",
        description="List every session the backend holds (backends that can list them: sql, "
        "mongo, dynamodb), with its unresolved instances counted by status, the running ones "
        "whose run lease ended (their worker died) and the unresolved logs.",
    )
    parser.add_argument("--status", action="append", dest="statuses", metavar="STATUS",
                        choices=[status.value for status in UNRESOLVED_STATUSES],
                        help="only sessions with an unresolved instance of this status "
                        f"(repeatable: {', '.join(s.value for s in UNRESOLVED_STATUSES)})")
    parser.add_argument("--limit", type=_positive, metavar="N", help="list at most N sessions")
    parser.set_defaults(handler=run)


def session_summary(selection: BackendSelection, uid: str) -> dict[str, Any]:
    """One row: ``{"uid", "tasks", "unresolved": {status: n}, "expiredLeases", "unresolvedLogs"}``."""
    with selection.open(uid) as storage:
        unresolved = storage.get_unresolved_instances()
        now = storage.now()
        counts = {status.value: 0 for status in UNRESOLVED_STATUSES}
        for instance in unresolved:
            counts[instance.status.value] = counts.get(instance.status.value, 0) + 1
        return {
            "uid": uid,
            "tasks": len(storage.tasks),
            "unresolved": counts,
            "expiredLeases": sum(1 for i in unresolved if run_leases.expired(i, now)),
            "unresolvedLogs": len(storage.get_instances_with_unresolved_logs()),
        }


def run(args: argparse.Namespace, context: CommandContext) -> int:
    selection = selection_from_args(args, context.environ)
    selection.check_schema_exists()  # reading only: a mistyped URL creates nothing
    try:
        uids = sorted(selection.backend_class().session_uids(**selection.admin_options()))
    except NotImplementedError as exc:
        raise UsageError(f"backend {selection.name!r} cannot list its sessions ({exc})") from None
    rows: list[dict[str, Any]] = []
    for uid in uids:
        if args.limit is not None and len(rows) >= args.limit:
            break
        row = session_summary(selection, uid)
        if args.statuses and not any(row["unresolved"][status] for status in args.statuses):
            continue
        rows.append(row)
    if wants_json(args):
        print_json(context, {"backend": selection.name, "sessions": rows, "sessionsTotal": len(uids)})
        return 0
    table = Table(title=render.plain(f"Sessions on {selection.describe()}"), title_justify="left")
    table.add_column("uid", overflow="fold")
    for column in ("tasks", *(status.value for status in UNRESOLVED_STATUSES), "lease ended", "logs"):
        table.add_column(column, justify="right")
    for row in rows:
        counts = [str(row["unresolved"][status.value]) for status in UNRESOLVED_STATUSES]
        table.add_row(render.plain(row["uid"]), str(row["tasks"]), *counts, str(row["expiredLeases"]),
                      str(row["unresolvedLogs"]))
    context.out.print(table)
    render.say(context.out, f"{len(rows)} of {len(uids)} sessions listed")
    return 0
