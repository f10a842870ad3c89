"""What every command receives besides its arguments, and its usage error.

Kept apart from :mod:`triggers.cli.main` so that command modules, which
:mod:`~triggers.cli.main` imports to build the parser, never import it back.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from rich.console import Console

__all__ = ["CommandContext", "Handler", "UsageError"]


@dataclass
class CommandContext:
    """What a command needs besides its arguments: where to print, the environment."""

    out: Console
    err: Console
    environ: Mapping[str, str] = field(default_factory=lambda: os.environ)


class UsageError(Exception):
    """Arguments that parse but do not make sense together (exit status 2, like argparse)."""


Handler = Callable[[argparse.Namespace, CommandContext], int]
"""``handler(args, context) -> exit status``, set on each subcommand's parser."""
