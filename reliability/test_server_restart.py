"""Server restart: outages fail clearly, the application recovers by itself, commits survive.

Each target's *private* server (never the shared ones other developers use)
is stopped cleanly or killed abruptly, between operations and in the middle
of them. The application is this test process, and a forked worker; neither
is restarted:

* during the outage every operation fails with a Triggers ``StorageError``
  naming the session (not a raw driver exception), or, where the driver
  retries within its call deadlines (pymongo), waits for the server and
  succeeds;
* once the server is back the same backend objects work again;
* everything committed before is still there, on durable stores. Redis
  without persistence and memcached lose their data by design: there the
  session must come back as a missing (empty) session, never as corruption;
* a store that loses its schema too (moto keeps its tables in memory) must
  say so: every operation fails with a ``SchemaError`` naming the session and
  how to create the schema, the backend never creates it by itself, and once
  an operator has run ``triggers schema create`` the same objects work again,
  the session being missing (empty).

The worker fires numbered ticks with an idempotency key per tick and retries
a fire that failed, so a fire whose commit reached the server but whose reply
was lost is not applied twice: afterwards every tick is there exactly once.
"""

from __future__ import annotations

import json
import multiprocessing
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

from triggers_reliability.figures import FIGURES
from triggers_reliability.private_servers import PrivateServer
from triggers_reliability.scale import Scale
from triggers_reliability.targets import Target
from triggers_reliability.workloads import check_ticks, configure_ticks

from triggers.errors import SchemaError, StorageError, TriggersError
from triggers.manager import TriggerManager
from triggers_conformance.processes import start_child

_FORK = multiprocessing.get_context("fork")


OUTAGE_SECONDS = 3.0
"""How long the server stays down while a worker fires.

Longer than one call's deadline in the suite's clients (pymongo's 2 s server
selection timeout, within which it retries), so an outage is long enough to
fail a call; a driver may still ride through it across several calls.
"""


def _outage(server: PrivateServer, round_number: int) -> str:
    """Take the server down: a clean stop on even rounds, a crash on odd ones."""
    if round_number % 2:
        server.crash()
        return "crash"
    server.stop()
    return "stop"


def _expect_clear_failure(
    operation: Any, uid: str, expected: type[StorageError] = StorageError
) -> StorageError:
    try:
        operation()
    except StorageError as error:
        assert isinstance(error, expected), f"not a {expected.__name__}: {error!r}"
        assert repr(uid) in str(error), f"the error does not name the session: {error}"
        return error
    raise AssertionError(f"an operation succeeded where a {expected.__name__} was due")


def _expect_missing_schema(uid: str, *operations: Any) -> None:
    """Each operation fails with a SchemaError saying how to create the schema (and creates nothing)."""
    for operation in operations:
        error = _expect_clear_failure(operation, uid, SchemaError)
        assert "schema create" in str(error), f"the error does not say how to create it: {error}"


def _create_schema_as_an_operator(target: Target, options: dict[str, Any]) -> None:
    """Run ``triggers schema create`` for the target's store, as an operator would."""
    command = [sys.executable, "-m", "triggers", "--backend", target.backend]
    for key, value in options.items():
        command += ["--option", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
    done = subprocess.run(
        [*command, "schema", "create"], capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, f"`triggers schema create` failed: {done.stderr}"


def _first_call_after_restart(target: Target, operation: Any) -> Any:
    """Run ``operation``; where the client is known to keep a dead connection
    (``Target.stale_first_call``), one clear StorageError is allowed first."""
    if target.stale_first_call:
        try:
            return operation()
        except StorageError:
            pass
    return operation()


def test_operations_between_restarts(
    target: Target, private_server: PrivateServer, tmp_path: Path, scale: Scale
) -> None:
    with target.open(private_server.endpoint, tmp_path) as options, \
            FIGURES.timed("server restart, between operations", target.name) as tally:
        uid = f"restart-{uuid.uuid4().hex[:8]}"
        storage = target.storage(options, uid, lock_timeout=10)
        manager = TriggerManager(storage)
        configure_ticks(storage)
        fired: list[tuple[int, int]] = []
        rounds = 0
        kinds: list[str] = []
        while scale.again(rounds, short=2):
            for _ in range(3):
                manager.fire("tick", {"worker": 0, "n": len(fired)})
                fired.append((0, len(fired)))
                tally.operations += 1
            kinds.append(_outage(private_server, rounds))
            tally.faults += 1
            storage.invalidate_cache()
            _expect_clear_failure(lambda: storage.instances, uid)
            _expect_clear_failure(lambda: manager.fire("tick", {"worker": 0, "n": -1}), uid)
            tally.operations += 2
            private_server.start()
            storage.invalidate_cache()
            if not target.keeps_schema:
                _expect_missing_schema(
                    uid,
                    lambda: storage.instances,
                    lambda: manager.fire("tick", {"worker": 0, "n": -1}),
                    lambda: storage.instances,  # still missing: the fire did not create it
                )
                _create_schema_as_an_operator(target, options)
            _first_call_after_restart(target, lambda: storage.metadata)
            if target.durable:
                tally.lost += check_ticks(storage, fired)
            else:
                # Lost by design: a missing session, not an error or corruption.
                assert (dict(storage.instances), storage.metadata) == ({}, {})
                configure_ticks(storage)
                fired = []
            tally.sessions += 1
            rounds += 1
        for _ in range(3):  # the same objects keep working after the last restart
            manager.fire("tick", {"worker": 0, "n": len(fired)})
            fired.append((0, len(fired)))
        storage.invalidate_cache()
        tally.lost += check_ticks(storage, fired)
        tally.note = f"{rounds} restarts ({', '.join(kinds)})" + (
            "" if target.keeps_schema else "; schema lost, created again by an operator after each"
        )


def _fire_through_outages(
    open_storage: Any, uid: str, fires: int, progress: Any, restarts_over: Any
) -> tuple[int, list[str], float]:
    """Fire numbered ticks, retrying each until it is applied, until at least
    ``fires`` are in and the parent has said its restarts are over; return how
    many were fired, the errors seen and the longest attempt in seconds.

    Firing on until the parent is done (rather than stopping at ``fires``)
    means the outage always meets a worker that is firing: a fast backend
    could otherwise finish every fire while the server was still being killed.
    """
    manager = TriggerManager(open_storage(uid))
    errors: list[str] = []
    longest = 0.0
    n = 0
    while n < fires or not restarts_over.value:
        deadline = time.monotonic() + 120
        while True:
            started = time.monotonic()
            try:
                manager.fire("tick", {"worker": 1, "n": n}, idempotency_key=f"tick-{n}")
                break
            except TriggersError as error:
                if not isinstance(error, StorageError) or time.monotonic() > deadline:
                    raise
                errors.append(f"{type(error).__name__}: {error}")
                time.sleep(0.05)
            finally:
                longest = max(longest, time.monotonic() - started)
        n += 1
        progress.value = n
    return n, errors, longest


def test_a_restart_in_the_middle_of_operations(
    target: Target, private_server: PrivateServer, tmp_path: Path, scale: Scale
) -> None:
    fires = scale.pick(short=30, soak=300)
    with target.open(private_server.endpoint, tmp_path) as options, \
            FIGURES.timed("server restart, during operations", target.name) as tally:

        def open_storage(uid: str) -> Any:
            return target.storage(options, uid, lease_ttl=target.min_lease, lock_timeout=60)

        uid = f"restart-live-{uuid.uuid4().hex[:8]}"
        configure_ticks(open_storage(uid))
        progress = _FORK.RawValue("q", 0)
        restarts_over = _FORK.RawValue("b", 0)
        worker = start_child(
            _fire_through_outages, open_storage, uid, fires, progress, restarts_over
        )
        rounds = 0
        while scale.again(rounds, short=1) and progress.value < fires:
            started = progress.value
            while progress.value < started + 5 and worker.process.is_alive():
                time.sleep(0.01)
            _outage(private_server, rounds + 1)  # a crash first: the harder case
            time.sleep(OUTAGE_SECONDS)  # the worker meets the outage
            private_server.start()
            if not target.keeps_schema:
                _create_schema_as_an_operator(target, options)  # the worker fails until then
            rounds += 1
        restarts_over.value = 1
        fired, errors, longest = worker.result(timeout=300)
        tally.faults += rounds
        tally.operations += fired + len(errors)
        # The worker fires without pause, so the outage meets one of its fires:
        # that fire fails, or its driver waits for the server (pymongo retries
        # within each call's deadline) and the fire lasts about as long as
        # the outage. A fire that meets no outage takes milliseconds.
        rode_through = longest >= OUTAGE_SECONDS / 2
        assert errors or rode_through, (
            f"the worker never met the outage (longest fire {longest:.2f} s)"
        )
        kinds = {"StorageError"} if target.keeps_schema else {"StorageError", "SchemaError"}
        assert all(error.split(":", 1)[0] in kinds for error in errors), errors
        missing_schema = [error for error in errors if error.startswith("SchemaError")]
        assert all("schema create" in error for error in missing_schema), missing_schema
        final = open_storage(uid)
        _first_call_after_restart(target, lambda: final.metadata)
        # Runs the instances whose fire was saved but whose run met the outage.
        TriggerManager(final).resume()
        final.invalidate_cache()
        if target.durable:
            # An instance whose own outcome could not be saved during the outage
            # is failed, or (if that could not be saved either) left running.
            tally.lost += check_ticks(
                final, [(1, n) for n in range(fired)], frozenset({"finished", "failed", "running"})
            )
            stuck = sorted(n for n, i in final.instances.items() if i.status.value != "finished")
        else:
            # The session was lost with the server's memory: only the ticks fired
            # after the restart may be there, and loading is no error.
            _ = final.instances
        tally.sessions += 1
        tally.note = (
            f"{rounds} crash(es) during {fired} fires; {len(errors)} failed attempts retried"
            + (f" ({len(missing_schema)} met the missing schema)" if missing_schema else "")
            + (f"; longest fire {longest:.1f} s" if rode_through else "")
            + (f"; not finished: {', '.join(stuck)}" if target.durable and stuck else "")
        )
