"""The work the scenarios do, and the checks that prove nothing was lost or torn.

Two workloads, each designed so that a wrong outcome is *visible*:

* **ticks** (load, restarts): every fire carries ``{"worker": w, "n": n}``
  and makes one ``t_tick#k`` instance, so afterwards the stored instances
  must be exactly the fires that were applied, each once, with the instance
  counter and the latest-kwargs metadata agreeing with them.
* **steps** (crashes): save number ``s`` creates ``t_step#(s-1)``, stamps
  ``latest = s`` on it and on the four instances before it, and sets the
  session's ``committed = s``, all in one save of several records. Every
  committed state is recognisable, so a load that mixes two saves (some
  records from ``s``, some from ``s - 1``) fails :func:`check_steps`.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable
from typing import Any

from triggers.manager import TriggerManager
from triggers.storage import INSTANCE_COUNTS_KEY, TRIGGER_KWARGS_KEY, TriggerStorageBackend

__all__ = [
    "STEP_WINDOW",
    "TICK_TASK",
    "check_steps",
    "check_ticks",
    "configure_steps",
    "configure_ticks",
    "fire_ticks",
    "step",
]

Open = Callable[[str], TriggerStorageBackend]
"""Opens a new backend object for a uid (in whichever process calls it)."""

TICK_TASK = {"run": "triggers_conformance.tasks.noop", "after": ["start"], "andEvery": "tick"}
STEP_TASK = {"run": "triggers_conformance.tasks.noop", "after": ["never-fired"]}
STEP_WINDOW = 5
"""How many of the newest instances each step stamps (the records one save writes)."""
STEP_PADDING = "p" * 2000
"""Makes every step's save bigger, so a kill lands inside a write more often."""


# -- ticks -------------------------------------------------------------------------


def configure_ticks(storage: TriggerStorageBackend) -> None:
    """Set up a session for ticks: ``t_tick`` makes one instance per ``tick`` fired."""
    manager = TriggerManager(storage)
    manager.update_configuration({"t_tick": TICK_TASK})
    manager.fire("start")


def fire_ticks(
    open_storage: Open, uids: list[str], worker: int, fires: int, until: float = float("inf")
) -> int:
    """Fire up to ``fires`` numbered ticks from this worker, spread over ``uids`` in turn.

    Stops early once ``time.time()`` passes ``until`` (a soak run's time
    share); returns how many ticks it fired.
    """
    managers = [TriggerManager(open_storage(uid)) for uid in uids]
    fired = 0
    while fired < fires and time.time() < until:
        managers[(worker + fired) % len(uids)].fire("tick", {"worker": worker, "n": fired})
        fired += 1
    for manager in managers:
        manager.storage.close()
    return fired


def check_ticks(
    storage: TriggerStorageBackend,
    expected: Iterable[tuple[int, int]],
    statuses: frozenset[str] = frozenset({"finished"}),
) -> int:
    """Assert the session holds exactly the ``expected`` (worker, n) ticks, each once.

    Every instance's status must be one of ``statuses`` (the noop task
    finishes, unless an outage hit the save that records its outcome).
    Returns how many ticks are missing (also an assertion failure), for the figures.
    """
    instances = storage.instances
    fired = sorted((i.kwargs["tick"]["worker"], i.kwargs["tick"]["n"]) for i in instances.values())
    wanted = sorted(expected)
    lost = len(set(wanted) - set(fired))
    assert fired == wanted, (
        f"session {storage.uid!r}: {lost} ticks lost, "
        f"{len(fired) - len(set(fired))} applied twice, "
        f"{len(set(fired) - set(wanted))} never fired"
    )
    names = [f"t_tick#{k}" for k in range(len(wanted))]
    assert sorted(instances) == sorted(names), "instance names are not t_tick#0..N-1"
    unexpected = {n: i.status.value for n, i in instances.items() if i.status.value not in statuses}
    assert not unexpected, f"session {storage.uid!r}: instances in unexpected states: {unexpected}"
    metadata = storage.metadata
    assert metadata[INSTANCE_COUNTS_KEY]["t_tick"] == len(wanted), "instance counter disagrees"
    if wanted:
        newest = instances[names[-1]].kwargs["tick"]
        assert metadata[TRIGGER_KWARGS_KEY]["tick"] == newest, "latest kwargs are not the last fire's"
    return lost


# -- steps -------------------------------------------------------------------------


def configure_steps(storage: TriggerStorageBackend) -> None:
    """Set up a session for steps (a task whose instances stay unstarted)."""
    with storage.acquire_lock():
        storage.update_configuration({"t_step": STEP_TASK})
        storage.metadata["committed"] = 0
        storage.save()


def step(
    storage: TriggerStorageBackend,
    on_locked: Callable[[], Any] | None = None,
    *,
    optimistic: bool = False,
) -> int:
    """Save the next step (see the module docstring); returns its number.

    Under ``acquire_lock()``, or with ``optimistic`` through ``transact()``
    (one conditional write and no lease, on backends that claim
    ``optimistic_saves``). ``on_locked`` is called once the step is under way:
    the lock is held, or the transaction has loaded.
    """

    def advance() -> int:
        if on_locked is not None:
            on_locked()
        number = int(storage.metadata["committed"]) + 1
        storage.create_instance("t_step", metadata={"step": number, "padding": STEP_PADDING})
        for k in range(max(0, number - STEP_WINDOW), number):
            storage[f"t_step#{k}"].metadata["latest"] = number
        storage.metadata["committed"] = number
        return number

    if optimistic:
        return storage.transact(advance)
    with storage.acquire_lock():
        number = advance()
        storage.save()
    return number


def check_steps(storage: TriggerStorageBackend) -> int:
    """Assert the session is exactly the state some whole step committed; return that step.

    Everything is read from one load: ``instances`` first (a full load, which
    brings the metadata along). Reading ``metadata`` first would load only the
    active part, and ``instances`` would then load again: outside the lock
    those two loads may see two different committed steps (a killed worker's
    last commit can still be finishing on the server), which looks like a
    torn save but is not one (RESULTS.md, #13).
    """
    instances = storage.instances
    committed = storage.metadata["committed"]
    assert sorted(instances, key=lambda name: int(name.partition("#")[2])) == [
        f"t_step#{k}" for k in range(committed)
    ], f"session {storage.uid!r}: instances do not match committed step {committed}"
    for k in range(committed):
        metadata = instances[f"t_step#{k}"].metadata
        assert metadata["step"] == k + 1
        assert metadata["latest"] == min(k + STEP_WINDOW, committed), (
            f"session {storage.uid!r}: t_step#{k} carries step {metadata['latest']}'s stamp "
            f"but the session says step {committed}: a torn save"
        )
    counts = storage.metadata.get(INSTANCE_COUNTS_KEY, {})
    assert counts.get("t_step", 0) == committed, "instance counter disagrees with the steps"
    return int(committed)
