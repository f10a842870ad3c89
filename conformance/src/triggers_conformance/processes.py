"""Running code in child processes for the cross-process tests.

Children are *forked*, so they inherit the backend factory (a closure the
author wrote in a test module, which could not be pickled) and build their own
backend objects from it. Backends must therefore be fork-safe: a connection
pool created before the fork must not be shared with the child (key pools by
process id, or re-create them after fork).
"""

from __future__ import annotations

import multiprocessing
import time
import traceback
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event
from typing import Any

__all__ = ["Child", "new_event", "start_child"]

_FORK = multiprocessing.get_context("fork")


def new_event() -> Event:
    """An event shared with children forked after it was made."""
    return _FORK.Event()


class Child:
    """A forked process running one function, with a pipe back to the test."""

    def __init__(self, process: BaseProcess, results: Connection) -> None:
        self.process = process
        self.results = results

    def wait_for(self, event: Event, timeout: float) -> None:
        """Wait until the child sets ``event``; fail fast (with its traceback) if it died."""
        deadline = time.monotonic() + timeout
        while not event.wait(0.05):
            if self.results.poll():
                _, value = self.results.recv()
                raise AssertionError(f"child process ended before it got ready:\n{value}")
            if not self.process.is_alive():
                raise AssertionError(f"child process died (exit code {self.process.exitcode})")
            if time.monotonic() > deadline:
                self.process.kill()
                raise TimeoutError(f"child process was not ready within {timeout:g} s")

    def result(self, timeout: float) -> Any:
        """The function's return value; re-raises its error with the child's traceback."""
        if not self.results.poll(timeout):
            self.process.kill()
            raise TimeoutError(f"child process gave no result within {timeout:g} s")
        ok, value = self.results.recv()
        self.process.join(timeout)
        if not ok:
            raise AssertionError(f"child process failed:\n{value}")
        return value


def _run(function: Callable[..., Any], args: tuple[Any, ...], results: Connection) -> None:
    try:
        value = function(*args)
    except BaseException:
        results.send((False, traceback.format_exc()))
    else:
        results.send((True, value))


def start_child(function: Callable[..., Any], *args: Any) -> Child:
    receiver, sender = _FORK.Pipe(duplex=False)
    process = _FORK.Process(target=_run, args=(function, args, sender), daemon=True)
    process.start()
    sender.close()
    return Child(process, receiver)
