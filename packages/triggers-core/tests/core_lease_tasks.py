"""Task callables of the run-lease tests (``run: core_lease_tasks.NAME``).

Each keeps its per-session state in a dictionary keyed by the session uid,
so tests running one after another never see each other's runs.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from triggers import run_leases
from triggers.manager import TriggerManager
from triggers.runners import TaskRunner
from triggers.storage import TriggerStorageBackend
from triggers.tasks import TaskContext

RUNS: dict[str, list[tuple[str, int]]] = {}
"""Session uid -> ``(instance, attempt)`` of every run of the tasks below."""

KILL_FIRST: set[str] = set()
"""Sessions whose first attempt of :func:`killed_first` dies like a SIGKILLed worker."""

GATES: dict[str, threading.Event] = {}
"""Session uid -> the gate that :func:`slow_first` waits on in its first attempt."""
STARTED: dict[str, threading.Event] = {}
"""Session uid -> set once the first attempt of :func:`slow_first` is running."""

OPENERS: dict[str, Callable[[], TriggerStorageBackend]] = {}
"""Session uid -> a factory of fresh storage objects (for :func:`wait_for_renewal`)."""


class HoldingRunner(TaskRunner):
    """Runs nothing: keeps the names, as a queue holds messages until a worker takes them."""

    def __init__(self) -> None:
        super().__init__()
        self.sent: list[str] = []

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        self.sent.append(instance_name)


HOLDING = HoldingRunner()
"""A runner made in code, for ``--runner core_lease_tasks:HOLDING``."""


class WorkerKilled(BaseException):
    """Stands for a worker killed mid-task: nothing the manager catches, no outcome recorded."""


def _record(context: TaskContext) -> int:
    attempt = run_leases.attempt_of(context.task_instance)
    RUNS.setdefault(context.session_uid, []).append((context.task_instance.name, attempt))
    return attempt


def counted(context: TaskContext) -> Mapping[str, Any]:
    """Finish, passing on which attempt ran."""
    return {"attempt": _record(context)}


def killed_first(context: TaskContext) -> Mapping[str, Any]:
    """Die in the first attempt if the test asked for it; finish in any other."""
    attempt = _record(context)
    if attempt == 1 and context.session_uid in KILL_FIRST:
        raise WorkerKilled(context.task_instance.name)
    return {"attempt": attempt}


def slow_first(context: TaskContext) -> Mapping[str, Any]:
    """The first attempt blocks until the test opens the gate; others finish at once."""
    attempt = _record(context)
    if attempt == 1:
        STARTED[context.session_uid].set()
        if not GATES[context.session_uid].wait(timeout=60):
            raise TimeoutError("the gate was never opened")
    return {"attempt": attempt}


def wait_for_renewal(context: TaskContext) -> Mapping[str, Any]:
    """Keep running until the stored run lease was renewed twice (at most 30 s)."""
    _record(context)
    storage = OPENERS[context.session_uid]()
    seen = [run_leases.expires_at(context.task_instance)]
    deadline = time.monotonic() + 30
    try:
        while len(seen) < 3:
            if time.monotonic() > deadline:
                raise TimeoutError(f"the run lease was renewed {len(seen) - 1} times in 30 s: {seen}")
            storage.invalidate_cache()
            stored = run_leases.expires_at(storage[context.task_instance.name])
            if stored is not None and seen[-1] is not None and stored > seen[-1]:
                seen.append(stored)
            time.sleep(0.05)
    finally:
        storage.close()
    return {"renewals": len(seen) - 1}
