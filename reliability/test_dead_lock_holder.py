"""Dead lock holder: a holder paused (SIGSTOP) past its lease cannot come back and write.

Process A takes the lock and changes the session, then is frozen with SIGSTOP
before it saves, as a long GC pause, a swapped-out VM or a stopped container
would freeze it. Its lease runs out; process B waits for the lock, gets it,
and saves. A is resumed (SIGCONT) and saves: the save must be refused and
change nothing, and the session must stay usable.

Two clocks for A: its real clock (the base class already sees that the lease
ran out and refuses before writing), and a clock that stopped when A was
paused (A believes its lease is still valid, so only the store's fence, the
lease token and version checked in the same write, can refuse it).
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
import uuid
from typing import Any

import pytest
from triggers_reliability.figures import FIGURES
from triggers_reliability.scale import Scale
from triggers_reliability.targets import Target

from triggers.errors import LeaseExpiredError, StaleSessionError
from triggers_conformance.processes import new_event, start_child

_FORK = multiprocessing.get_context("fork")


@pytest.mark.parametrize("clock", ["real-clock", "stopped-clock"])
def test_a_holder_paused_past_its_lease_is_refused_and_changes_nothing(
    target: Target, store: dict[str, Any], scale: Scale, clock: str
) -> None:
    lease = target.min_lease

    def open_storage(uid: str, **options: Any) -> Any:
        return target.storage(store, uid, lease_ttl=lease, lock_timeout=lease * 10 + 5, **options)

    def stale_holder(uid: str, ready: Any, go: Any) -> str:
        started = time.time()
        options = {"clock": lambda: started} if clock == "stopped-clock" else {}
        storage = open_storage(uid, **options)
        with storage.acquire_lock():
            storage.metadata["owner"] = "stale"
            storage.metadata["stale-only"] = True
            ready.set()
            while not go.value:  # the test pauses this process here, past the lease
                time.sleep(0.01)
            try:
                storage.save()
            except (StaleSessionError, LeaseExpiredError) as refusal:
                return f"refused: {type(refusal).__name__}: {refusal}"
        return "saved"

    def newcomer(uid: str) -> int:
        storage = open_storage(uid)
        with storage.acquire_lock():
            storage.metadata["owner"] = "newcomer"
            storage.metadata["saves"] = storage.metadata.get("saves", 0) + 1
            storage.save()
        return int(storage.metadata["saves"])

    with FIGURES.timed(f"dead lock holder ({clock})", target.name) as tally:
        rounds = 0
        while scale.again(rounds, short=1):
            uid = f"paused-{uuid.uuid4().hex[:8]}"
            assert newcomer(uid) == 1
            # A plain shared byte, not an Event: an Event's lock could be held by
            # the paused process and block the test.
            ready, go = new_event(), _FORK.RawValue("b", 0)
            holder = start_child(stale_holder, uid, ready, go)
            holder.wait_for(ready, timeout=60)
            assert holder.process.pid is not None
            os.kill(holder.process.pid, signal.SIGSTOP)
            try:
                go.value = 1
                assert start_child(newcomer, uid).result(timeout=60) == 2
            finally:
                os.kill(holder.process.pid, signal.SIGCONT)
            outcome = holder.result(timeout=60)
            tally.faults += 1
            tally.operations += 3
            assert outcome.startswith("refused"), f"a holder paused past its lease {outcome}"
            if clock == "stopped-clock":
                assert "StaleSessionError" in outcome, outcome  # the store's fence refused it
            stored = open_storage(uid).metadata
            tally.lost += stored.get("owner") != "newcomer"
            assert stored == {**stored, "owner": "newcomer", "saves": 2}
            assert "stale-only" not in stored
            assert newcomer(uid) == 3  # the session is still usable
            tally.sessions += 1
            rounds += 1
        tally.note = f"{rounds} paused holder(s), all refused"
