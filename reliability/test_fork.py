"""Fork under load: storage objects made before ``fork()`` serve parent and children.

A prefork worker pool (gunicorn, Celery) builds its objects, then forks.
Here the parent makes and uses one storage object per session, then forks
workers that fire through those same inherited objects while the parent
fires through its own copies. Afterwards every trigger was applied exactly
once in the session it was fired into: no process read or wrote through
another's connection. Short run: 3 workers + the parent x 10 fires into 3
sessions; soak run: 6 x 100 into 6.
"""

from __future__ import annotations

import uuid
from typing import Any

from triggers_reliability.figures import FIGURES
from triggers_reliability.scale import Scale
from triggers_reliability.targets import Target
from triggers_reliability.workloads import check_ticks, configure_ticks, fire_ticks

from triggers_conformance.processes import start_child


def test_objects_made_before_fork_serve_every_process_without_bleed(
    target: Target, store: dict[str, Any], scale: Scale
) -> None:
    workers = scale.pick(short=3, soak=6)
    fires = scale.pick(short=10, soak=100)
    sessions = scale.pick(short=3, soak=6)
    uids = [f"fork-{uuid.uuid4().hex[:8]}-{k}" for k in range(sessions)]
    inherited = {uid: target.storage(store, uid, lock_timeout=120.0) for uid in uids}
    with FIGURES.timed("fork under load", target.name) as tally:
        for storage in inherited.values():
            configure_ticks(storage)  # the objects hold open, pooled connections now
        children = [
            start_child(fire_ticks, inherited.__getitem__, uids, worker, fires)
            for worker in range(1, workers + 1)
        ]
        parent_fired = fire_ticks(inherited.__getitem__, uids, 0, fires)
        done = [parent_fired, *(child.result(timeout=600) for child in children)]
        assert done == [fires] * (workers + 1)
        tally.operations += sum(done)
        expected: dict[str, list[tuple[int, int]]] = {uid: [] for uid in uids}
        for worker in range(workers + 1):
            for n in range(fires):
                expected[uids[(worker + n) % sessions]].append((worker, n))
        for uid in uids:
            tally.lost += check_ticks(target.storage(store, uid), expected[uid])
            tally.sessions += 1
        tally.note = f"{workers} forked workers + the parent x {fires} fires into {sessions} sessions"
