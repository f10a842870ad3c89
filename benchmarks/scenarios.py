"""What is measured on each target, and how.

The workload is the one every backend exists for: a trigger fired into a
session whose history keeps growing. Each session holds ``size`` task
instances: two active ones (``t_page#0`` waiting for ``page``, ``t_wait#0``
waiting for a trigger that never comes) and ``size - 2`` finished ones. A
*fire* is ``TriggerManager.fire("page", {...})`` with the default eager
runner, so it is complete when it returns: the ``andEvery`` task gets a new
instance, which is scheduled and claimed (marked running) in one transaction,
run (a no-op task), and recorded finished in a second transaction (each one
save; optimistic where the backend claims ``optimistic_saves``, under the
session lock otherwise).

A *queued fire* is ``fire("job", {...})`` for a task whose runner only queues
it (as a deployment with workers elsewhere does): applying the trigger and
scheduling the instance, one transaction, which is the I/O the floor stands
for. Each queued fire is timed alone; its instance is then run and finished
untimed (as the worker would), so the session stays the same shape.

Measured per target, for the backend and for the naive baseline on the same
store:

* fire latency (median, p95) at each size;
* load latency of the whole session (``len(storage.instances)`` after
  ``invalidate_cache()``) at each size;
* round trips, bytes written, saves and lock cycles (leases taken) per fire, counted by the
  target's meter (not timed, so exact);
* queued fire latency, round trips, saves and lock cycles, the same way;
* the floor (one read and one conditional write through the raw driver);
* the lock's own cost (an empty ``with acquire_lock():`` block);
* throughput of 1, 2, 4, 8 worker processes firing into distinct sessions and
  into one shared session (backend only: the naive baseline's lock is local to
  a process).

All sessions of a target are prepared first; then the floor, the lock cycle
and every fire and load figure are timed in turn, one repetition each per
round (up to ``reps``, at least ``min_reps``, within a time budget per
figure), so that load from elsewhere on the machine weighs on all of them
alike. Each is summarised by :class:`Sample`. Each fire adds a finished
instance, so a session measured at ``size`` holds up to ``size + reps + 4``
instances by the end of its figure; counts are taken first, at ``size + 1``.
"""

from __future__ import annotations

import gc
import multiprocessing
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from functools import partial
from typing import Any

from benchmarks.targets import Target
from triggers.locking import Lease
from triggers.manager import TriggerManager
from triggers.runners import TaskRunner
from triggers.storage import SessionChanges, TriggerStorageBackend
from triggers.types import InstanceStatus

__all__ = ["FULL", "QUICK", "Plan", "Sample", "measure_target"]

NOOP = "triggers_conformance.tasks.noop"

TASKS: dict[str, dict[str, Any]] = {
    "t_page": {"run": NOOP, "after": ["start"], "andEvery": "page"},
    "t_job": {"run": NOOP, "after": ["start"], "andEvery": "job", "using": "queue"},
    "t_wait": {"run": NOOP, "after": ["start", "never"]},
}
ACTIVE_INSTANCES = 3
"""Instances a session keeps unresolved (``t_page#0`` and ``t_job#0`` before
their first fires, ``t_wait#0``)."""


class QueueRunner(TaskRunner):
    """Queues scheduled instances instead of running them (a task queue's producer side)."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[str] = []

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        self.queued.append(instance_name)

    def work_off(self, manager: TriggerManager) -> None:
        """Run what was queued, as a worker process would."""
        while self.queued:
            manager.run_instance(self.queued.pop(0))


def new_manager(storage: TriggerStorageBackend) -> tuple[TriggerManager, QueueRunner]:
    """A manager with the default eager runner, and a queue runner for ``t_job``."""
    queue = QueueRunner()
    return TriggerManager(storage, runners={"queue": queue}), queue


@dataclass(frozen=True)
class Plan:
    """How much to measure: sizes, repetitions, budgets, worker counts."""

    sizes: tuple[int, ...]
    reps: int
    min_reps: int
    budget_seconds: float
    """Most time spent on one figure (reps stop early, never below ``min_reps``)."""
    counted_fires: int
    workers: tuple[int, ...]
    throughput_seconds: float


FULL = Plan(
    sizes=(10, 100, 1_000, 10_000),
    reps=25,
    min_reps=3,
    budget_seconds=6.0,
    counted_fires=3,
    workers=(1, 2, 4, 8),
    throughput_seconds=3.0,
)
QUICK = Plan(
    sizes=(10, 1_000),
    reps=4,
    min_reps=2,
    budget_seconds=0.5,
    counted_fires=1,
    workers=(1, 2),
    throughput_seconds=0.3,
)


@dataclass(frozen=True)
class Sample:
    """Summary of repeated timings, in milliseconds."""

    median_ms: float
    p95_ms: float
    spread_pct: float
    """(p90 - p10) / median, in percent: how noisy the figure is."""
    reps: int

    @classmethod
    def of(cls, seconds: list[float]) -> Sample:
        ms = sorted(s * 1000 for s in seconds)
        median = statistics.median(ms)
        return cls(
            median_ms=median,
            p95_ms=_percentile(ms, 95),
            spread_pct=100 * (_percentile(ms, 90) - _percentile(ms, 10)) / median if median else 0.0,
            reps=len(ms),
        )


def _percentile(ordered: list[float], percent: float) -> float:
    """Linear-interpolated percentile of an ordered list."""
    if len(ordered) == 1:
        return ordered[0]
    position = (len(ordered) - 1) * percent / 100
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@dataclass
class _Lane:
    """One figure being timed: an action repeated in turn with every other lane."""

    name: str
    action: Callable[[int], object]
    settle: Callable[[], object] | None = None
    """Run untimed after each repetition (work that follows the timed action)."""
    seconds: list[float] = field(default_factory=list)
    error: str | None = None

    def done(self, plan: Plan) -> bool:
        reps = len(self.seconds)
        spent = sum(self.seconds)
        return self.error is not None or reps >= plan.reps or (
            reps >= plan.min_reps and spent >= plan.budget_seconds
        )


def _round_robin(lanes: list[_Lane], plan: Plan) -> None:
    """Time every lane, one repetition of each in turn, until each is done.

    Interleaving is what makes ratios trustworthy on a shared machine: a burst
    of load from elsewhere slows every figure of the run alike, instead of
    whichever size happened to be measured at the time.
    """
    while True:
        active = [lane for lane in lanes if not lane.done(plan)]
        if not active:
            return
        for lane in active:
            start = time.perf_counter()
            try:
                lane.action(len(lane.seconds))
                elapsed = time.perf_counter() - start
                if lane.settle is not None:
                    lane.settle()
            except Exception as exc:
                lane.error = f"{type(exc).__name__}: {exc}"
                continue
            lane.seconds.append(elapsed)


def build_session(
    open_session: Callable[[str], TriggerStorageBackend], uid: str, size: int,
    batch: int | None = None,
) -> None:
    """Store a session of ``size`` instances: two active, the rest finished history.

    The history is saved ``batch`` instances at a time (default: in one save).
    """
    storage = open_session(uid)
    try:
        manager, _ = new_manager(storage)
        manager.update_configuration(TASKS)
        manager.fire("start")
        history = size - ACTIVE_INSTANCES
        step = batch or max(history, 1)
        for first in range(0, history, step):
            with storage.acquire_lock():
                for n in range(first, min(first + step, history)):
                    storage.create_instance(
                        "t_page", status=InstanceStatus.FINISHED,
                        kwargs={"page": {"n": n}, "start": {}},
                    )
                storage.save()
    finally:
        storage.close()


class _CycleCounter:
    """Counts, on one session object, the leases taken (lock cycles) and the
    saves handed to the store (one per transaction that changed something)."""

    def __init__(self, storage: TriggerStorageBackend) -> None:
        self.leases = self.saves = 0
        acquire, save_changes = storage._acquire_lease, storage._save_changes

        def counted_lease(lease: Lease) -> bool:
            self.leases += 1
            return acquire(lease)

        def counted_save(changes: SessionChanges) -> None:
            self.saves += 1
            save_changes(changes)

        storage._acquire_lease = counted_lease  # type: ignore[method-assign]
        storage._save_changes = counted_save  # type: ignore[method-assign]

    def reset(self) -> None:
        self.leases = self.saves = 0


@dataclass
class _Prepared:
    """A stored session of one size, opened for firing and for loading, with its counts."""

    storage: TriggerStorageBackend
    reader: TriggerStorageBackend
    manager: TriggerManager
    queue: QueueRunner
    counts: dict[str, float]

    def fire(self, rep: int) -> None:
        self.manager.fire("page", {"n": rep})

    def queued_fire(self, rep: int) -> None:
        self.manager.fire("job", {"n": rep})

    def work_off(self) -> None:
        self.queue.work_off(self.manager)

    def load(self, rep: int) -> None:
        self.reader.invalidate_cache()
        len(self.reader.instances)

    def close(self) -> None:
        self.storage.close()
        self.reader.close()


def prepare_session(
    target: Target, open_session: Callable[[str], TriggerStorageBackend], uid: str, size: int,
    plan: Plan,
) -> _Prepared:
    """Store a session of ``size`` instances, warm it up, and count what a fire sends."""
    build_session(open_session, uid, size, target.max_records_per_save)
    storage = open_session(uid)
    manager, queue = new_manager(storage)
    manager.fire("page", {"n": "warm-up"})
    manager.fire("job", {"n": "warm-up"})
    queue.work_off(manager)
    # Counted before any timing, while the session is closest to ``size``.
    cycles = _CycleCounter(storage)
    counted = plan.counted_fires
    counts: dict[str, float] = {}
    for kind, trigger in (("", "page"), ("queued_", "job")):
        cycles.reset()
        with target.meter() as tally:
            for n in range(counted):
                manager.fire(trigger, {"n": f"counted {n}"})
        counts[f"round_trips_per_{kind}fire"] = tally.round_trips / counted
        counts[f"bytes_written_per_{kind}fire"] = tally.bytes_written / counted
        counts[f"lock_cycles_per_{kind}fire"] = cycles.leases / counted
        counts[f"saves_per_{kind}fire"] = cycles.saves / counted
        queue.work_off(manager)
    return _Prepared(storage, open_session(uid), manager, queue, counts)


class _LockCycle:
    """An empty ``with acquire_lock():`` block: the lock's own cost."""

    def __init__(self, target: Target, uid: str) -> None:
        self.storage = target.open_session(uid)

    def __call__(self, rep: int) -> None:
        with self.storage.acquire_lock():
            pass


def _worker(
    target: Target, uid: str, seconds: float, barrier: Any, results: Any
) -> None:
    """One throughput worker (a forked process): fire until the time is up."""
    fires, error = 0, ""
    try:
        storage = target.open_session(uid)
        manager = TriggerManager(storage)
        manager.fire("page", {"n": "warm-up"})
        barrier.wait(timeout=60)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            manager.fire("page", {"n": fires})
            fires += 1
        storage.close()
    except Exception as exc:  # reported by the parent, not lost in a child's stderr
        error = f"{type(exc).__name__}: {exc}"
        barrier.abort()
    results.put((fires, error))


def _throughput(target: Target, uids: list[str], seconds: float) -> float:
    """Fires per second of ``len(uids)`` processes, worker ``i`` firing into ``uids[i]``."""
    gc.collect()  # fewer pages for the forked children to copy on write
    context = multiprocessing.get_context("fork")
    barrier = context.Barrier(len(uids) + 1)
    results = context.Queue()
    workers = [
        context.Process(target=_worker, args=(target, uid, seconds, barrier, results))
        for uid in uids
    ]
    for worker in workers:
        worker.start()
    try:
        barrier.wait(timeout=120)
    except Exception:
        pass  # a worker failed before firing; its error is collected below
    outcomes = [results.get(timeout=seconds + 120) for _ in workers]
    for worker in workers:
        worker.join(timeout=30)
    errors = [error for _, error in outcomes if error]
    if errors:
        raise RuntimeError(f"{target.name}: a throughput worker failed: {errors[0]}")
    fired: int = sum(fires for fires, _ in outcomes)
    return fired / seconds


def measure_target(
    target: Target, plan: Plan, uid_prefix: str, log: Callable[[str], None]
) -> dict[str, Any]:
    """Every figure for one target, as JSON-ready data (errors recorded, not raised)."""
    result: dict[str, Any] = {"store": target.store, "sizes": {}, "naive": {}, "errors": []}

    def attempt(what: str, action: Callable[[], Any]) -> Any:
        log(f"{target.name}: {what}")
        try:
            return action()
        except Exception as exc:
            result["errors"].append(f"{what}: {type(exc).__name__}: {exc}")
            log(f"{target.name}: {what} failed: {type(exc).__name__}: {exc}")
            return None

    lanes: list[_Lane] = []
    closers: list[Callable[[], None]] = []
    floor = attempt("floor", target.open_floor)
    floor_io = None
    if floor is not None:
        closers.append(floor.close)
        floor_io = floor.fire()  # warms it up, and counts what one floor fire sends
        lanes.append(_Lane("floor", lambda rep: floor.fire()))
    lock = attempt("lock cycle", partial(_LockCycle, target, f"{uid_prefix}lock"))
    if lock is not None:
        closers.append(lock.storage.close)
        lock(-1)
        lanes.append(_Lane("lock", lock))
    prepared: dict[tuple[str, int], _Prepared] = {}
    for kind, open_session in (("sizes", target.open_session), ("naive", target.open_naive)):
        for size in plan.sizes:
            what = f"{'backend' if kind == 'sizes' else 'naive baseline'} at {size:,} instances"
            if target.max_instances is not None and size > target.max_instances[0]:
                result["errors"].append(f"{what}: not measured: {target.max_instances[1]}")
                continue
            uid = f"{uid_prefix}{kind[0]}{size}"
            session = attempt(what, partial(prepare_session, target, open_session, uid, size, plan))
            if session is not None:
                closers.append(session.close)
                prepared[kind, size] = session
                lanes.append(_Lane(f"{kind} {size} fire", session.fire))
                lanes.append(_Lane(f"{kind} {size} queued fire", session.queued_fire, session.work_off))
                lanes.append(_Lane(f"{kind} {size} load", session.load))
    if target.steady_state is not None:
        attempt("steady state", target.steady_state)
    try:
        log(f"{target.name}: timing {len(lanes)} figures in turn")
        _round_robin(lanes, plan)
    finally:
        for close in reversed(closers):
            try:
                close()
            except Exception as exc:
                result["errors"].append(f"closing: {type(exc).__name__}: {exc}")
    timed = {lane.name: lane for lane in lanes}
    for lane in lanes:
        if lane.error is not None:
            result["errors"].append(f"{lane.name}: {lane.error}")

    def sample(name: str) -> dict[str, Any] | None:
        lane = timed.get(name)
        return asdict(Sample.of(lane.seconds)) if lane is not None and lane.seconds else None

    result["floor"] = None if floor_io is None else {
        "fire": sample("floor"),
        "round_trips_per_fire": floor_io.round_trips,
        "bytes_written_per_fire": floor_io.bytes_written,
    }
    result["lock_cycle"] = sample("lock")
    if lock is not None:
        result["optimistic_saves"] = lock.storage.capabilities.optimistic_saves
    for (kind, size), session in prepared.items():
        fire, load = sample(f"{kind} {size} fire"), sample(f"{kind} {size} load")
        queued = sample(f"{kind} {size} queued fire")
        if fire is not None and load is not None:
            result[kind][str(size)] = {"fire": fire, "queued_fire": queued, "load": load, **session.counts}
    throughput: dict[str, dict[str, float]] = {"distinct": {}, "shared": {}}
    small = min(plan.sizes)
    for workers in plan.workers:
        distinct = [f"{uid_prefix}d{workers}-{n}" for n in range(workers)]
        shared = f"{uid_prefix}shared{workers}"

        def run_distinct(uids: list[str] = distinct) -> float:
            for uid in uids:
                build_session(target.open_session, uid, small, target.max_records_per_save)
            return _throughput(target, uids, plan.throughput_seconds)

        def run_shared(uid: str = shared, workers: int = workers) -> float:
            build_session(target.open_session, uid, small, target.max_records_per_save)
            return _throughput(target, [uid] * workers, plan.throughput_seconds)

        fires = attempt(f"throughput, {workers} distinct", run_distinct)
        if fires is not None:
            throughput["distinct"][str(workers)] = fires
        if target.shared_across_processes:
            fires = attempt(f"throughput, {workers} shared", run_shared)
            if fires is not None:
                throughput["shared"][str(workers)] = fires
    result["throughput"] = throughput
    return result
