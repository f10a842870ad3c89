"""Load: many processes fire into one session, and into many sessions at once.

Afterwards every trigger was applied exactly once and every session's
instances agree with its counters and latest kwargs (see ``check_ticks``).
Short run (kept cheap for the test command): 3 processes x 12 fires, into 1
and into 6 sessions; soak run: 8 x 200, into 1 and into 50 sessions.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
from triggers_reliability.figures import FIGURES
from triggers_reliability.scale import Scale
from triggers_reliability.targets import Target
from triggers_reliability.workloads import check_ticks, configure_ticks, fire_ticks

from triggers_conformance.processes import start_child


@pytest.mark.parametrize("sessions", [1, 50], ids=["one-session", "many-sessions"])
def test_processes_fire_concurrently_and_every_trigger_is_applied_once(
    target: Target, store: dict[str, Any], scale: Scale, sessions: int
) -> None:
    workers = scale.pick(short=3, soak=8)
    fires = scale.pick(short=12, soak=200)
    sessions = 1 if sessions == 1 else scale.pick(short=6, soak=50)
    uids = [f"load-{uuid.uuid4().hex[:8]}-{k}" for k in range(sessions)]

    # The lock polls, so it is not fair: with 8 processes firing into one
    # session back to back, a waiter can keep losing the race to processes
    # that release and take the lock again at once (a soak run saw a waiter
    # give up after 120 s on the caches, nothing lost). This scenario is
    # about lost updates, so a soak run's waiters may wait out its share.
    lock_timeout = max(120.0, scale.remaining()) if scale.soak else 120.0

    def open_storage(uid: str) -> Any:
        return target.storage(store, uid, lock_timeout=lock_timeout)

    with FIGURES.timed(f"load, {'one session' if sessions == 1 else 'many sessions'}",
                       target.name) as tally:
        for uid in uids:
            configure_ticks(open_storage(uid))
        until = time.time() + scale.remaining()  # a soak run stops firing when its share is spent
        children = [
            start_child(fire_ticks, open_storage, uids, worker, fires, until)
            for worker in range(workers)
        ]
        done = [child.result(timeout=600 + min(scale.remaining(), 10**6)) for child in children]
        if not scale.soak:
            assert done == [fires] * workers
        tally.operations += sum(done)
        expected: dict[str, list[tuple[int, int]]] = {uid: [] for uid in uids}
        for worker in range(workers):
            for n in range(done[worker]):
                expected[uids[(worker + n) % sessions]].append((worker, n))
        for uid in uids:
            if not expected[uid]:  # a soak run's time share ended before any tick reached it
                _ = open_storage(uid).instances
                continue
            tally.lost += check_ticks(open_storage(uid), expected[uid])
            tally.sessions += 1
        tally.note = f"{workers} processes x {fires} fires into {sessions} session(s)"
        if sum(done) < workers * fires:
            tally.note += f"; the time share ended after {sum(done)} fires"
