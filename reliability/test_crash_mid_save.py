"""Crash mid-save: a worker killed with SIGKILL at random moments while it saves.

A forked worker saves steps (see ``workloads``) in a loop, each save several
records at once; the test kills it after a random delay, then loads the
session in a fresh object: the load must succeed and be exactly a state some
whole step committed (never a mix), and must hold every step the worker had
seen committed. Every other worker saves through ``transact()`` instead of
the lock, which on backends claiming ``optimistic_saves`` is one conditional
write without a lease, so both ways of saving are killed mid-write. Kills
rotate over a few sessions so that a session whose lock died with its worker
has had its lease run out before it is used again (the next worker's bounded
wait covers the rest). Short run: 20 kills per target; soak run: as many as
the time share allows (at least 20).
"""

from __future__ import annotations

import multiprocessing
import os
import random
import signal
import uuid
from typing import Any

from triggers_reliability.figures import FIGURES
from triggers_reliability.scale import Scale
from triggers_reliability.targets import Target
from triggers_reliability.workloads import check_steps, configure_steps, step

from triggers_conformance.processes import new_event, start_child

SESSIONS = 4
KILL_AFTER = (0.0, 0.12)
"""Seconds between the worker's first load and its SIGKILL (uniform, so kills land anywhere)."""

_FORK = multiprocessing.get_context("fork")


def test_sigkill_while_saving_leaves_a_whole_committed_state(
    target: Target, store: dict[str, Any], scale: Scale
) -> None:
    lease = target.min_lease

    def open_storage(uid: str) -> Any:
        return target.storage(store, uid, lease_ttl=lease, lock_timeout=lease * 10 + 5)

    uids = [f"crash-{uuid.uuid4().hex[:8]}-{k}" for k in range(SESSIONS)]
    for uid in uids:
        # The set-up holds a default lease: the short one is for the workers,
        # and a loaded machine could outlast it before the first save.
        configure_steps(target.storage(store, uid))
    last_seen = {uid: 0 for uid in uids}
    random_delays = random.Random()

    with FIGURES.timed("crash mid-save (SIGKILL)", target.name) as tally:
        kills = killed_locked = killed_transacting = 0
        while scale.again(kills, short=20):
            uid = uids[kills % SESSIONS]
            # Lock-free shared numbers: a lock held by the killed worker would
            # block the test forever.
            seen = _FORK.RawValue("q", last_seen[uid])
            locked = _FORK.RawValue("b", 0)
            ready = new_event()

            optimistic = kills % 2 == 1

            def work(
                uid: str = uid, seen: Any = seen, locked: Any = locked, ready: Any = ready,
                optimistic: bool = optimistic,
            ) -> None:
                storage = open_storage(uid)
                _ = storage.metadata  # connected and loaded: from now on it only saves steps
                ready.set()

                def note_locked() -> None:
                    locked.value = 1

                while True:
                    locked.value = 0
                    seen.value = step(storage, on_locked=note_locked, optimistic=optimistic)

            child = start_child(work)
            child.wait_for(ready, timeout=60)
            child.process.join(random_delays.uniform(*KILL_AFTER))
            assert child.process.is_alive(), f"the worker died by itself:\n{child.results.recv()}"
            assert child.process.pid is not None
            os.kill(child.process.pid, signal.SIGKILL)
            child.process.join(10)
            kills += 1
            if optimistic:
                killed_transacting += locked.value
            else:
                killed_locked += locked.value

            committed = check_steps(open_storage(uid))
            assert committed >= seen.value, (
                f"session {uid!r}: the worker saw step {seen.value} committed, the store has {committed}"
            )
            tally.lost += max(0, seen.value - committed)
            tally.operations += committed - last_seen[uid]
            last_seen[uid] = committed
            tally.sessions += 1
        tally.faults += kills
        # One more whole step on every session: a crashed worker never blocks it for good.
        for uid in uids:
            assert step(open_storage(uid)) == check_steps(open_storage(uid)) == last_seen[uid] + 1
            tally.operations += 1
        tally.note = (
            f"{kills} SIGKILLs, {killed_locked} while holding the lock, "
            f"{killed_transacting} inside a transaction"
        )
