"""``triggers inspect UID``: what a session holds and what is still unresolved."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime
from typing import Any

from triggers.cli import render
from triggers.cli.context import CommandContext
from triggers.cli.exchange import MissingSessionError, document_of
from triggers.cli.output import print_json
from triggers.cli.selection import selection_from_args
from triggers.storage import TRIGGER_KWARGS_KEY, TriggerStorageBackend
from triggers.types import InstanceStatus

__all__ = ["register"]


def register(subcommands: Any) -> None:
    parser = subcommands.add_parser(
        "inspect",
        help="show a session's tasks, instances, statuses, logs and unresolved work",
        description="Show a session: its tasks, every instance with its status, triggers and "
        "log level, the unresolved tasks, instances and logs, and the exception and traceback "
        "of each failed instance.",
    )
    parser.add_argument("uid", metavar="UID", help="the session's uid")
    parser.add_argument("--json", action="store_true",
                        help="print one JSON object (stored form of every record) instead of tables")
    parser.add_argument("--status", action="append", choices=[status.value for status in InstanceStatus],
                        metavar="STATUS", dest="statuses",
                        help="show only instances with this status (repeatable: "
                        f"{', '.join(status.value for status in InstanceStatus)})")
    parser.add_argument("--limit", type=_positive, metavar="N",
                        help="show at most the N instances changed most recently (large sessions)")
    parser.set_defaults(handler=run)


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"--limit must be a whole number, not {text!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError(f"--limit must be at least 1, not {number}")
    return number


def run(args: argparse.Namespace, context: CommandContext) -> int:
    selection = selection_from_args(args, context.environ)
    with selection.open_for_reading(args.uid) as storage:
        report = session_report(storage)
        total = len(report["instances"])
        shown = _selected(storage, list(report["instances"]), args.statuses, args.limit)
        report["instances"] = {name: report["instances"][name] for name in shown}
        if args.json:
            if args.statuses or args.limit:
                report["instancesTotal"] = total
            print_json(context, {**report, "backend": selection.name})
            return 0
        instances = [storage[name] for name in shown]  # in debug_repr's order
        render.print_session(
            context.out,
            uid=storage.uid,
            backend=selection.describe(),
            tasks=[storage.tasks[name] for name in sorted(storage.tasks)],
            instances=instances,
            counts={name: storage.instance_count(name) for name in storage.tasks},
            unresolved_tasks=report["unresolvedTasks"],
            unresolved_instances=report["unresolvedInstances"],
            unresolved_logs=report["unresolvedLogs"],
            fired=storage.metadata.get(TRIGGER_KWARGS_KEY) or {},
        )
        if len(shown) < total:
            render.say(context.out, f"{len(shown)} of {total} instances shown (--status / --limit)")
    return 0


def _selected(storage: TriggerStorageBackend, names: list[str], statuses: list[str] | None,
              limit: int | None) -> list[str]:
    """The instances ``--status`` and ``--limit`` keep, in the report's order."""
    if statuses:
        names = [name for name in names if storage[name].status.value in statuses]
    if limit is not None and len(names) > limit:
        oldest = datetime.min.replace(tzinfo=UTC)
        newest = sorted(names, key=lambda name: storage[name].last_modified or oldest)[-limit:]
        kept = set(newest)
        names = [name for name in names if name in kept]
    return names


def session_report(storage: TriggerStorageBackend) -> dict[str, Any]:
    """The whole session in stored form plus what is unresolved, by name.

    Raises :class:`MissingSessionError` for a session that holds nothing (a
    mistyped uid, usually): inspecting it would only print empty tables.
    """
    document = document_of(storage)
    if document.is_empty:
        raise MissingSessionError(f"session {storage.uid!r} does not exist (nothing is stored under it)")
    failed = [
        name for name, instance in storage.instances.items() if instance.status is InstanceStatus.FAILED
    ]
    return {
        **document.to_json(),
        "unresolvedTasks": [config.name for config in storage.get_unresolved_tasks()],
        "unresolvedInstances": [instance.name for instance in storage.get_unresolved_instances()],
        "unresolvedLogs": [instance.name for instance in storage.get_instances_with_unresolved_logs()],
        "failedInstances": sorted(failed),
    }

