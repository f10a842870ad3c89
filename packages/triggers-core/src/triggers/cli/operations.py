"""The manager's operations, for operators recovering a session by hand.

``fire``, ``replay``, ``skip``, ``resolve-logs``, ``set-status`` and
``resume`` go through the trigger manager built by
:func:`triggers.registry.manager_from_config` (``--manager`` / ``--runner``,
or ``TRIGGERS_MANAGER`` / ``TRIGGERS_RUNNER``; a runner may be
``module:attribute``), so they take
the session lock and save exactly as an application's call would. Tasks that
become ready run on that runner: the default ``eager`` runner runs them in
this process, which must then be able to import them. A command whose
tasks failed (a task that raised, in this run) exits 1 and names them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from triggers.cli import render
from triggers.cli.context import CommandContext, UsageError
from triggers.cli.exchange import MissingSessionError
from triggers.cli.output import print_json, wants_json
from triggers.cli.selection import selection_from_args
from triggers.manager import TriggerManager
from triggers.registry import manager_from_config
from triggers.types import InstanceStatus

__all__ = ["register"]


def _json_object(flag: str) -> Callable[[str], dict[str, Any]]:
    def parse(text: str) -> dict[str, Any]:
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{flag} is not valid JSON: {exc}") from None
        if not isinstance(value, dict):
            raise argparse.ArgumentTypeError(f"{flag} must be a JSON object, not {text!r}")
        return value

    return parse


def register(subcommands: Any) -> None:
    def add(name: str, help_text: str, description: str) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = subcommands.add_parser(
            name, help=help_text, description=description
        )
        parser.add_argument("uid", metavar="UID", help="the session's uid")
        return parser

    fire = add("fire", "fire a trigger into a session",
               "Fire TRIGGER into the session, as TriggerManager.fire() does: instances that "
               "become ready are scheduled and handed to the runner.")
    fire.add_argument("trigger", metavar="TRIGGER", help="the trigger's name")
    fire.add_argument("--kwargs", type=_json_object("--kwargs"), default=None, metavar="JSON",
                      help="the trigger's kwargs, a JSON object")
    fire.add_argument("--idempotency-key", metavar="KEY",
                      help="a key that makes a retried fire a no-op")
    fire.set_defaults(handler=run_fire)

    replay = add("replay", "replay a failed instance",
                 "Replay a failed instance: it becomes 'replayed' and a clone is scheduled, with "
                 "the original kwargs or those given.")
    replay.add_argument("instance", metavar="INSTANCE", help="the failed instance, e.g. t_import#0")
    replay.add_argument("--kwargs", type=_json_object("--kwargs"), default=None, metavar="JSON",
                        help='replacement kwargs by trigger, e.g. \'{"pageReceived": {"page": 2}}\'')
    replay.set_defaults(handler=run_replay)

    skip = add("skip", "mark a failed instance skipped",
               "Mark a failed instance skipped; with --cascade, fire its trigger as if it had "
               "finished, with --result as the kwargs.")
    skip.add_argument("instance", metavar="INSTANCE", help="the failed instance")
    skip.add_argument("--cascade", action="store_true", help="fire the instance's trigger")
    skip.add_argument("--result", type=_json_object("--result"), default=None, metavar="JSON",
                      help="kwargs of the cascaded trigger, a JSON object (needs --cascade)")
    skip.set_defaults(handler=run_skip)

    resolve = add("resolve-logs", "acknowledge an instance's warnings and errors",
                  "Mark an instance's logged warnings and errors as resolved.")
    resolve.add_argument("instance", metavar="INSTANCE", help="the instance")
    resolve.set_defaults(handler=run_resolve_logs)

    set_status = add("set-status", "set an instance's status (an operator's repair)",
                     "Set an instance's status, as TriggerManager.update_instance_status() does: "
                     "only the allowed changes (running -> scheduled, failed or skipped, say); "
                     "'scheduled' hands it to the runner; 'finished' with --cascade fires the "
                     "instance's trigger (with --result as its kwargs), as if its task had returned.")
    set_status.add_argument("instance", metavar="INSTANCE", help="the instance, e.g. t_import#0")
    set_status.add_argument("status", metavar="STATUS", choices=[status.value for status in InstanceStatus],
                            help=f"the new status ({', '.join(status.value for status in InstanceStatus)})")
    set_status.add_argument("--cascade", action="store_true",
                            help="with 'finished': fire the instance's trigger, as its task would")
    set_status.add_argument("--result", type=_json_object("--result"), default=None, metavar="JSON",
                            help="kwargs of the cascaded trigger, a JSON object (needs --cascade)")
    set_status.set_defaults(handler=run_set_status)

    resume: argparse.ArgumentParser = subcommands.add_parser(
        "resume", help="hand scheduled instances, and those whose worker died, to the runner again",
        description="TriggerManager.resume() on each session: every scheduled instance, and every "
        "running one whose run lease has ended (its worker died), is handed to the runner again. "
        "--all resumes every session of the backend (where the backend can list them).")
    resume.add_argument("uids", metavar="UID", nargs="*", help="the sessions' uids")
    resume.add_argument("--all", action="store_true", dest="all_sessions",
                        help="every session the backend holds")
    resume.set_defaults(handler=run_resume)

    for parser in (fire, replay, skip, resolve, set_status, resume):
        parser.add_argument("--manager", metavar="NAME",
                            help="trigger manager entry point (default: $TRIGGERS_MANAGER or 'default')")
        parser.add_argument("--runner", metavar="NAME",
                            help="task runner: an entry point, or module:attribute of a runner made "
                            "in code (default: $TRIGGERS_RUNNER or 'eager')")


def _manager(args: argparse.Namespace, context: CommandContext, uid: str | None = None) -> TriggerManager:
    """The manager of an existing session (operations on a mistyped uid are refused)."""
    uid = args.uid if uid is None else uid
    storage = selection_from_args(args, context.environ).open(uid)
    if not storage.tasks:
        storage.close()
        raise MissingSessionError(
            f"session {uid!r} has no tasks (nothing is stored under this uid); check the uid"
        )
    config = {key: value for key, value in (("manager", args.manager), ("runner", args.runner)) if value}
    return manager_from_config(storage, config, context.environ)


def _finish(manager: TriggerManager) -> None:
    """Wait for the tasks the runner started (the eager one ran them already), then close."""
    try:
        manager.join_all()
    finally:
        manager.storage.close()


def _failed(manager: TriggerManager) -> dict[str, str]:
    """Failed instances as stored now, with their error messages (an ACTIVE load)."""
    manager.storage.invalidate_cache()
    return {
        instance.name: str((instance.metadata.get("error") or {}).get("message", ""))
        for instance in manager.storage.get_unresolved_instances()
        if instance.status is InstanceStatus.FAILED
    }


@dataclass
class _Outcome:
    """What an operation did, for its line of text or its ``--json`` object."""

    scheduled: list[str] = field(default_factory=list)
    statuses: dict[str, str] = field(default_factory=dict)
    newly_failed: dict[str, str] = field(default_factory=dict)

    def shown(self) -> str:
        """``name (now status)`` of each scheduled instance, after its tasks ran."""
        if not self.scheduled:
            return "nothing"
        return ", ".join(f"{name} (now {self.statuses.get(name, '?')})" for name in self.scheduled)

    def to_json(self) -> dict[str, Any]:
        return {
            "scheduled": [{"instance": name, "status": self.statuses.get(name)} for name in self.scheduled],
            "failed": [{"instance": name, "message": message}
                       for name, message in sorted(self.newly_failed.items())],
        }


def _operate(manager: TriggerManager, operation: Callable[[], list[str]]) -> _Outcome:
    """Run ``operation`` (returning the instances it scheduled) and see what became of them.

    Every task the operation ran (those it scheduled and their cascades, on
    the eager runner) has finished by the time this returns; an instance
    that failed now but had not failed before is what makes the command
    exit 1, so a script notices a fire whose task raised.
    """
    failed_before = _failed(manager)
    scheduled = operation()
    manager.join_all()
    failed_after = _failed(manager)
    statuses = {name: manager.storage[name].status.value for name in scheduled}
    newly_failed = {name: message for name, message in failed_after.items() if name not in failed_before}
    return _Outcome(scheduled, statuses, newly_failed)


def _report(args: argparse.Namespace, context: CommandContext, text: str, outcome: _Outcome,
            **extra: Any) -> int:
    """Print the operation's line (or JSON) and the failures; 1 if a task it ran failed."""
    if wants_json(args):
        print_json(context, {"uid": args.uid, **extra, **outcome.to_json()})
    else:
        render.say(context.out, text)
        for name, message in sorted(outcome.newly_failed.items()):
            render.say(context.err, f"triggers: task instance {name} failed: {message}")
    return 1 if outcome.newly_failed else 0


def run_fire(args: argparse.Namespace, context: CommandContext) -> int:
    manager = _manager(args, context)
    try:
        outcome = _operate(manager, lambda: manager.fire(
            args.trigger, args.kwargs, idempotency_key=args.idempotency_key))
    finally:
        _finish(manager)
    text = f"fired {args.trigger!r} into {args.uid!r}; scheduled: {outcome.shown()}"
    return _report(args, context, text, outcome, trigger=args.trigger)


def run_replay(args: argparse.Namespace, context: CommandContext) -> int:
    manager = _manager(args, context)
    try:
        outcome = _operate(manager, lambda: [
            manager.replay_failed_instance(args.instance, args.kwargs).name])
    finally:
        _finish(manager)
    text = f"replayed {args.instance!r} as {outcome.shown()}"
    return _report(args, context, text, outcome, replayed=args.instance)


def run_skip(args: argparse.Namespace, context: CommandContext) -> int:
    if args.result is not None and not args.cascade:
        raise UsageError("--result is only used with --cascade (it is the cascaded trigger's kwargs)")
    manager = _manager(args, context)
    try:
        def skip() -> list[str]:
            manager.skip_failed_instance(args.instance, cascade=args.cascade, result=args.result)
            return []

        outcome = _operate(manager, skip)
    finally:
        _finish(manager)
    how = " and fired its trigger" if args.cascade else ""
    return _report(args, context, f"skipped {args.instance!r}{how}", outcome,
                   skipped=args.instance, cascade=args.cascade)


def run_resolve_logs(args: argparse.Namespace, context: CommandContext) -> int:
    manager = _manager(args, context)
    try:
        manager.mark_instance_logs_resolved(args.instance)
    finally:
        _finish(manager)
    return _report(args, context, f"marked the logs of {args.instance!r} resolved", _Outcome(),
                   logsResolved=args.instance)


def run_set_status(args: argparse.Namespace, context: CommandContext) -> int:
    if args.result is not None and not args.cascade:
        raise UsageError("--result is only used with --cascade (it is the cascaded trigger's kwargs)")
    if args.cascade and args.status != InstanceStatus.FINISHED.value:
        raise UsageError("--cascade needs the status 'finished' (only a finished task fires its trigger)")
    manager = _manager(args, context)
    try:
        def set_status() -> list[str]:
            """The instance (if set to scheduled) and the instances its cascade scheduled."""
            unstarted = InstanceStatus.UNSTARTED
            before = {name: i.status for name, i in manager.storage.instances.items()}
            manager.update_instance_status(
                args.instance, args.status, cascade=args.cascade, cascade_kwargs=args.result
            )
            manager.storage.invalidate_cache()
            cascaded = sorted(
                name for name, i in manager.storage.instances.items()
                if name != args.instance and before.get(name, unstarted) is unstarted
                and i.status is not unstarted
            )
            return ([args.instance] if args.status == InstanceStatus.SCHEDULED.value else []) + cascaded

        outcome = _operate(manager, set_status)
    finally:
        _finish(manager)
    text = f"set {args.instance!r} to {args.status}; scheduled: {outcome.shown()}"
    return _report(args, context, text, outcome, instance=args.instance, status=args.status)


def run_resume(args: argparse.Namespace, context: CommandContext) -> int:
    if args.all_sessions == bool(args.uids):
        raise UsageError("name the sessions to resume (UID ...) or pass --all, not both")
    uids: list[str] = list(args.uids)
    if args.all_sessions:
        selection = selection_from_args(args, context.environ)
        try:
            uids = sorted(selection.backend_class().session_uids(**selection.admin_options()))
        except NotImplementedError as exc:
            raise UsageError(f"backend {selection.name!r} cannot list its sessions ({exc}); "
                             "name the sessions to resume") from None
    sessions: list[dict[str, Any]] = []
    failed = 0
    for uid in uids:
        manager = _manager(args, context, uid)
        try:
            outcome = _operate(manager, manager.resume)
        finally:
            _finish(manager)
        failed += bool(outcome.newly_failed)
        sessions.append({"uid": uid, **outcome.to_json()})
        if not wants_json(args):
            render.say(context.out, f"resumed {uid!r}: {outcome.shown()}")
            for name, message in sorted(outcome.newly_failed.items()):
                render.say(context.err, f"triggers: task instance {name} failed: {message}")
    if wants_json(args):
        print_json(context, {"sessions": sessions})
    elif not uids:
        render.say(context.out, "no sessions to resume")
    return 1 if failed else 0
