"""Plain-text summaries of a session: what an operator checks after a run.

Everything here only reads the session through the public storage API
(``tasks``, ``instances``, ``get_unresolved_tasks()``,
``get_unresolved_instances()``, ``get_instances_with_unresolved_logs()``), so
it works the same on every backend.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from triggers import InstanceStatus, TaskConfig, TaskInstance, TriggerStorageBackend

__all__ = ["describe_instance", "describe_score", "format_table", "summarize_session"]


def format_table(headers: Sequence[str], rows: Iterable[Sequence[str]], indent: str = "  ") -> str:
    """Columns aligned to their widest cell, a dashed rule under the headers."""
    body = [list(row) for row in rows]
    widths = [max(len(cell) for cell in column) for column in zip(headers, *body, strict=False)]

    def line(cells: Sequence[str]) -> str:
        return (indent + "  ".join(cell.ljust(width) for cell, width in zip(cells, widths, strict=True))).rstrip()

    return "\n".join([line(headers), line(["-" * width for width in widths]), *map(line, body)])


def _directives(config: TaskConfig) -> list[tuple[str, str]]:
    """A task's directives as written in a configuration, in the usual order."""
    directives = [("after", ", ".join(config.after))]
    if config.and_every:
        directives.append(("andEvery", config.and_every))
    if config.unless:
        directives.append(("unless", ", ".join(config.unless)))
    for trigger, params in sorted(config.with_params.items()):
        directives.append(("withParams", f"{trigger}: {json.dumps(params, sort_keys=True)}"))
    if config.using:
        directives.append(("using", config.using))
    directives.append(("run", config.run))
    for key, value in sorted(config.extra.items()):
        directives.append((key, json.dumps(value, sort_keys=True, default=str)))
    return directives


def _instance_order(instance: TaskInstance) -> tuple[str, int]:
    _, _, number = instance.name.rpartition("#")
    return instance.task_name, int(number) if number.isdigit() else -1


def describe_instance(instance: TaskInstance) -> str:
    """One line on where an instance stands: what it waits for, why it failed..."""
    if instance.status is InstanceStatus.UNSTARTED and instance.missing_triggers:
        return f"waiting for {', '.join(instance.missing_triggers)}"
    if instance.status is InstanceStatus.FAILED:
        error = instance.metadata.get("error")
        if isinstance(error, Mapping):
            error_type = str(error.get("type", "")).rpartition(".")[2]
            return f"{error_type}: {error.get('message')}"
    if instance.parent:
        return f"replay of {instance.parent}"
    return ""


def summarize_session(storage: TriggerStorageBackend) -> str:
    """Tasks with their directives, every instance, and what still needs attention."""
    tasks = sorted(storage.tasks.values(), key=lambda config: config.name)
    instances = sorted(storage.instances.values(), key=_instance_order)

    task_rows: list[list[str]] = []
    for config in tasks:
        for index, (directive, value) in enumerate(_directives(config)):
            task_rows.append([config.name if index == 0 else "", directive, value])
    instance_rows = [
        [
            instance.name,
            instance.status.value,
            str(instance.depth),
            instance.parent or "-",
            instance.log_level_name,
            "yes" if instance.logs_resolved else "NO",
        ]
        for instance in instances
    ]

    def listing(title: str, items: Sequence[str]) -> str:
        if not items:
            return f"{title}: none"
        return "\n".join([f"{title}: {len(items)}", *(f"  {item}" for item in items)])

    unresolved_tasks = [config.name for config in storage.get_unresolved_tasks()]
    unresolved_instances = [
        f"{instance.name} ({instance.status.value}) {describe_instance(instance)}".rstrip()
        for instance in storage.get_unresolved_instances()
    ]
    unresolved_logs = [
        f"{instance.name} ({instance.log_level_name})"
        for instance in storage.get_instances_with_unresolved_logs()
    ]
    sections = [
        f"Session {storage.uid}: {len(tasks)} tasks, {len(instances)} instances",
        "Tasks\n" + (format_table(["task", "directive", "value"], task_rows) if task_rows else "  (none)"),
        "Instances\n"
        + (
            format_table(["instance", "status", "depth", "parent", "log level", "logs resolved"], instance_rows)
            if instance_rows
            else "  (none)"
        ),
        "\n".join(
            [
                listing("Unresolved tasks", unresolved_tasks),
                listing("Unresolved instances", unresolved_instances),
                listing("Instances with unresolved logs", unresolved_logs),
            ]
        ),
    ]
    return "\n\n".join(sections)


def describe_score(result: Mapping[str, Any] | None) -> str:
    """The score line, from the kwargs ``t_computeScore`` fired (None: not scored yet)."""
    if result is None:
        return "Score: not computed yet (t_computeScore runs once sessionFinalized fires)"
    verdict = "passed" if result.get("passed") else "failed"
    return (
        f"Score: {result.get('subjectId')} scored {result.get('score')}/100 "
        f"({result.get('scoring')}, pass mark {result.get('passMark')}): {verdict}; "
        f"{result.get('answered')} of {result.get('questions')} questions answered"
    )
