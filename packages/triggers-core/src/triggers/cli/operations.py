"""The manager's operations, for operators recovering a session by hand.

``fire``, ``replay``, ``skip`` and ``resolve-logs`` go through the trigger
manager built by :func:`triggers.registry.manager_from_config` (``--manager``
/ ``--runner``, or ``TRIGGERS_MANAGER`` / ``TRIGGERS_RUNNER``), so they take
the session lock and save exactly as an application's call would. Tasks that
become ready run on that runner: the default ``eager`` runner runs them in
this process, which must then be able to import them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from triggers.cli import render
from triggers.cli.exchange import MissingSessionError
from triggers.cli.main import CommandContext, UsageError
from triggers.cli.selection import selection_from_args
from triggers.manager import TriggerManager
from triggers.registry import manager_from_config

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

    for parser in (fire, replay, skip, resolve):
        parser.add_argument("--manager", metavar="NAME",
                            help="trigger manager entry point (default: $TRIGGERS_MANAGER or 'default')")
        parser.add_argument("--runner", metavar="NAME",
                            help="task runner entry point (default: $TRIGGERS_RUNNER or 'eager')")


def _manager(args: argparse.Namespace, context: CommandContext) -> TriggerManager:
    """The manager of an existing session (operations on a mistyped uid are refused)."""
    storage = selection_from_args(args, context.environ).open(args.uid)
    if not storage.tasks:
        storage.close()
        raise MissingSessionError(
            f"session {args.uid!r} has no tasks (nothing is stored under this uid); check the uid"
        )
    config = {key: value for key, value in (("manager", args.manager), ("runner", args.runner)) if value}
    return manager_from_config(storage, config, context.environ)


def _finish(manager: TriggerManager) -> None:
    """Wait for the tasks the runner started (the eager one ran them already), then close."""
    try:
        manager.join_all()
    finally:
        manager.storage.close()


def _outcomes(manager: TriggerManager, names: list[str]) -> str:
    """``name (status)`` of each instance as stored now, after its tasks ran."""
    if not names:
        return "nothing"
    manager.join_all()
    manager.storage.invalidate_cache()
    return ", ".join(f"{name} (now {manager.storage[name].status.value})" for name in names)


def run_fire(args: argparse.Namespace, context: CommandContext) -> int:
    manager = _manager(args, context)
    try:
        scheduled = manager.fire(args.trigger, args.kwargs, idempotency_key=args.idempotency_key)
        shown = _outcomes(manager, scheduled)
    finally:
        _finish(manager)
    render.say(context.out, f"fired {args.trigger!r} into {args.uid!r}; scheduled: {shown}")
    return 0


def run_replay(args: argparse.Namespace, context: CommandContext) -> int:
    manager = _manager(args, context)
    try:
        clone = manager.replay_failed_instance(args.instance, args.kwargs)
        shown = _outcomes(manager, [clone.name])
    finally:
        _finish(manager)
    render.say(context.out, f"replayed {args.instance!r} as {shown}")
    return 0


def run_skip(args: argparse.Namespace, context: CommandContext) -> int:
    if args.result is not None and not args.cascade:
        raise UsageError("--result is only used with --cascade (it is the cascaded trigger's kwargs)")
    manager = _manager(args, context)
    try:
        manager.skip_failed_instance(args.instance, cascade=args.cascade, result=args.result)
    finally:
        _finish(manager)
    how = " and fired its trigger" if args.cascade else ""
    render.say(context.out, f"skipped {args.instance!r}{how}")
    return 0


def run_resolve_logs(args: argparse.Namespace, context: CommandContext) -> int:
    manager = _manager(args, context)
    try:
        manager.mark_instance_logs_resolved(args.instance)
    finally:
        _finish(manager)
    render.say(context.out, f"marked the logs of {args.instance!r} resolved")
    return 0
