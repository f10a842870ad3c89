"""How sessions, backends and capability reports look in a terminal (rich).

Only presentation lives here; the commands decide what to show. Machines get
``--json`` from the commands instead of parsing these tables.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from triggers.capabilities import Capabilities
from triggers.types import InstanceStatus, TaskConfig, TaskInstance

__all__ = [
    "capabilities_text",
    "failure_panel",
    "instances_table",
    "plain",
    "print_session",
    "printable",
    "say",
    "status_text",
    "tasks_table",
]

STATUS_STYLES: Mapping[InstanceStatus, str] = {
    InstanceStatus.UNSTARTED: "dim",
    InstanceStatus.SCHEDULED: "cyan",
    InstanceStatus.RUNNING: "blue",
    InstanceStatus.FINISHED: "green",
    InstanceStatus.FAILED: "bold red",
    InstanceStatus.REPLAYED: "yellow",
    InstanceStatus.SKIPPED: "yellow",
    InstanceStatus.ABANDONED: "magenta",
}


# Characters a terminal acts on rather than shows: C0 (ESC starts CSI/OSC
# sequences: cursor moves, window titles, OSC 52 clipboard writes), DEL, C1
# (0x9b is a one-byte CSI) and the Unicode bidi controls that reorder what a
# reader sees. Stored text (names, error messages, tracebacks, kwargs) may
# come from outside input, so every human-readable output goes through
# printable(); the JSON outputs escape through json.dumps instead.
_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_UNSAFE_LINE = re.compile(f"[\x00-\x1f\x7f-\x9f{_BIDI}]")
_UNSAFE_LINES = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{_BIDI}]")  # keeps newlines


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def printable(value: object, *, multiline: bool = False) -> str:
    """``value`` as text that shows on a terminal exactly as stored, never acts on it.

    Every control character (C0, DEL, C1) and bidi control is written as its
    escape (``\\x1b``, ``\\u202e``), as ``repr`` would: an error message or a
    name made from outside input cannot set the window title, write the
    clipboard, clear the screen or fake report lines. ``multiline`` keeps
    newlines (a traceback is shown as separate lines; nothing else in a line
    can move the cursor). Markup is a separate matter: show the result as
    :func:`plain` ``Text`` (or print with ``markup=False``), never as a
    markup string, so ``[red]x[/red]`` prints literally.
    """
    return (_UNSAFE_LINES if multiline else _UNSAFE_LINE).sub(_escaped, str(value))


def plain(value: object, style: str = "", *, multiline: bool = False) -> Text:
    """:func:`printable` text as a rich ``Text``: shown literally, no markup parsed."""
    return Text(printable(value, multiline=multiline), style=style)


def say(console: Console, message: object, **options: Any) -> None:
    """Print one message made of stored or outside text: escaped, no markup, no highlighting."""
    console.print(plain(message), highlight=False, **options)


def status_text(status: InstanceStatus) -> Text:
    """A status, coloured: failures stand out, finished work recedes."""
    return Text(status.value, style=STATUS_STYLES.get(status, ""))


def capabilities_text(capabilities: Capabilities) -> str:
    """The guarantees a backend claims, then its limits, comma-separated."""
    claimed = [name for name in Capabilities.guarantee_names() if getattr(capabilities, name)]
    limits = [
        f"{name}={getattr(capabilities, name)}"
        for name in ("max_uid_length", "max_record_bytes", "max_session_bytes")
        if getattr(capabilities, name) is not None
    ]
    if capabilities.min_lease_seconds:
        limits.append(f"min_lease_seconds={capabilities.min_lease_seconds:g}")
    return ", ".join([*claimed, *limits]) or "none claimed"


def _short(value: Any, limit: int = 60) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _cell(value: str | Text) -> Text:
    """A table cell: rich would read a plain string as markup, so it becomes literal Text."""
    if isinstance(value, Text):
        return value
    return plain(value)


def _table(title: str, columns: Sequence[str], rows: Sequence[Sequence[str | Text]],
           *, no_wrap: int = 1) -> Table:
    """A table without the columns that are empty in every row (narrow terminals).

    The first ``no_wrap`` columns (the names) are never wrapped.
    """
    keep = [i for i, _ in enumerate(columns) if i < no_wrap or any(str(row[i]) for row in rows)]
    table = Table(title=title, title_justify="left")
    for i in keep:
        table.add_column(columns[i], no_wrap=i < no_wrap, overflow="fold")
    for row in rows:
        table.add_row(*(_cell(row[i]) for i in keep))
    return table


def tasks_table(tasks: Iterable[TaskConfig], counts: Mapping[str, int], unresolved: set[str]) -> Table:
    """One row per task: its directives, how many instances it had, whether it is resolved."""
    rows = [
        (
            config.name,
            ", ".join(config.after),
            config.and_every or "",
            ", ".join(config.unless),
            config.run,
            config.using or "",
            str(counts.get(config.name, 0)),
            Text("no", style="yellow") if config.name in unresolved else Text("yes", style="green"),
        )
        for config in tasks
    ]
    columns = ("task", "after", "andEvery", "unless", "run", "using", "instances", "resolved")
    return _table("Tasks", columns, rows)


def instances_table(instances: Sequence[TaskInstance]) -> Table:
    """One row per instance: status, triggers received and awaited, logs, last change."""
    rows = []
    for instance in instances:
        if instance.log_level < logging.WARNING:
            logs = Text("")
        elif instance.logs_resolved:
            logs = Text("resolved", style="green")
        else:
            logs = Text("unresolved", style="bold yellow")
        modified = instance.last_modified
        rows.append((
            instance.name,
            status_text(instance.status),
            instance.parent or "",
            ", ".join(f"{trigger} {_short(kwargs, 40)}" for trigger, kwargs in instance.kwargs.items()),
            ", ".join(instance.missing_triggers),
            instance.log_level_name if instance.log_level else "",
            logs,
            modified.strftime("%Y-%m-%d %H:%M:%S UTC") if modified else "",
        ))
    columns = ("instance", "status", "replays", "triggers", "waiting for", "log level", "logs",
               "last modified")
    return _table("Instances", columns, rows, no_wrap=2)


def failure_panel(instance: TaskInstance) -> Panel:
    """A failed instance's exception and traceback, as the manager recorded them."""
    error = instance.metadata.get("error")
    error = error if isinstance(error, dict) else {}
    heading = plain(f"{error.get('type') or 'error'}: {error.get('message', '')}", "bold red",
                    multiline=True)
    traceback = str(error.get("traceback") or "(no traceback recorded)").rstrip()
    return Panel(Group(heading, plain(traceback, multiline=True)),
                 title=plain(f"{instance.name} failed"), title_align="left")


def print_session(
    console: Console,
    *,
    uid: str,
    backend: str,
    tasks: Sequence[TaskConfig],
    instances: Sequence[TaskInstance],
    counts: Mapping[str, int],
    unresolved_tasks: Sequence[str],
    unresolved_instances: Sequence[str],
    unresolved_logs: Sequence[str],
    fired: Mapping[str, Any],
) -> None:
    """The whole ``triggers inspect`` page of one session."""
    console.print(Text.assemble(("session ", "bold"), plain(uid, "bold cyan"),
                                plain(f"  on {backend}")))
    fired_text = ", ".join(f"{name} {_short(kwargs, 40)}" for name, kwargs in fired.items())
    console.print(Text.assemble(("Triggers fired: ", "bold"), plain(fired_text or "none")))
    console.print(tasks_table(tasks, counts, set(unresolved_tasks)))
    if instances:
        console.print(instances_table(instances))
    else:
        console.print("No instances yet.")
    console.print(_names_line("Unresolved tasks", unresolved_tasks))
    console.print(_names_line("Unresolved instances", unresolved_instances))
    console.print(_names_line("Unresolved logs", unresolved_logs))
    for instance in instances:
        if instance.status is InstanceStatus.FAILED:
            console.print(failure_panel(instance))


def _names_line(label: str, names: Sequence[str]) -> Text:
    if not names:
        return Text.assemble((f"{label}: ", "bold"), ("none", "green"))
    return Text.assemble((f"{label}: ", "bold"), plain(", ".join(names), "yellow"))
