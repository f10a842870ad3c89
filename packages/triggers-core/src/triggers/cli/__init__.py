"""The ``triggers`` command: inspect, repair, move and check sessions from a shell.

``main(argv)`` is the entry point (``triggers`` on the PATH, or
``python -m triggers``); each command group lives in its own module and adds
its subcommands to the parser through a ``register(subparsers)`` function.
"""

from triggers.cli.main import main

__all__ = ["main"]
