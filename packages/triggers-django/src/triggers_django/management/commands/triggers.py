"""``manage.py triggers ...``: the ``triggers`` command with the project's settings.

Every argument goes to the ``triggers`` command unchanged (``manage.py
triggers inspect UID --json``); the storage it works on is the one
``settings.TRIGGERS`` selects, Django database aliases resolved, unless the
command line names another with ``--backend``. Exit status as ``triggers``'s.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from triggers.registry import BACKEND_ENV, MANAGER_ENV, OPTIONS_ENV, RUNNER_ENV
from triggers_django.conf import triggers_settings


def run_triggers(arguments: Sequence[str]) -> int:
    """Run the ``triggers`` command with the settings' storage, runner and manager."""
    from triggers.cli.main import main

    settings = triggers_settings()
    config = settings.storage_config()
    environ = {**os.environ, BACKEND_ENV: config["backend"], OPTIONS_ENV: json.dumps(config["options"])}
    for variable, name in ((RUNNER_ENV, settings.runner), (MANAGER_ENV, settings.manager)):
        if name:
            environ[variable] = name
    return main(list(arguments), environ=environ)


class Command(BaseCommand):
    help = "Run the triggers command (inspect, fire, replay, export, ...) on the project's sessions."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("arguments", nargs=argparse.REMAINDER,
                            help="the triggers command's arguments, e.g. inspect UID --json")

    def run_from_argv(self, argv: list[str]) -> None:
        # Django's own parser would take the triggers command's options
        # (--backend, --json...) as its own: hand everything over untouched.
        sys.exit(run_triggers(argv[2:]))

    def handle(self, *args: Any, **options: Any) -> None:
        status = run_triggers([*args, *options.get("arguments", [])])
        if status:
            raise CommandError(f"triggers exited with status {status}", returncode=status)
