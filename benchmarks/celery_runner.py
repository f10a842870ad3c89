"""``python -m benchmarks.celery_runner [--quick]``: fires/s and completions/s through Celery.

End to end: the benchmark process fires ``job`` into a few sessions on
PostgreSQL (the sql backend), each fire scheduling one instance of a no-op
task; the instances run on 1, 2 and 4 real ``celery worker`` processes (solo
pool, the same machine, a Redis broker by default). Two rates per row:

* **fires/s**: fires the firing process completes per second (apply the
  trigger, schedule, save, send the message);
* **completions/s**: instances finished per second, from the first fire
  until the last instance is recorded finished (claim, run, record on a
  worker, each its own locked save).

The threading runner (4 threads in the firing process) is the row beside
them: the same work without a broker or another process. Each row is
preceded by an untimed warm-up (a worker's first task opens its connections). Results go to
``benchmarks/results/celery-STAMP.json`` and are printed as a table.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kombu import Connection
from sqlalchemy import create_engine

from benchmarks.celery_app import make_app
from triggers.manager import TriggerManager
from triggers.registry import storage_backends
from triggers.runners import TaskRunner, ThreadingTaskRunner
from triggers.storage import TriggerStorageBackend
from triggers.types import InstanceStatus
from triggers_conformance.catalogue import POSTGRESQL_URL

ROOT = Path(__file__).resolve().parent.parent
BROKERS = {"redis": os.environ.get("TRIGGERS_CELERY_REDIS_URL", "redis://127.0.0.1:6379/14"),
           "rabbitmq": os.environ.get("TRIGGERS_CELERY_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")}
CONFIGURATION = {"t_job": {"after": [], "andEvery": "job", "run": "benchmarks.celery_app.noop"}}
SESSIONS = 8
WAIT = 600.0


def _start_workers(count: int, broker: str, queue: str, logs: Path) -> list[subprocess.Popen[bytes]]:
    env = {**os.environ, "TRIGGERS_BENCH_BROKER": broker, "TRIGGERS_BENCH_QUEUE": queue,
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    workers = []
    for index in range(count):
        log = logs / f"worker-{queue}-{index}.log"
        with log.open("wb") as out:
            workers.append(subprocess.Popen(
                [sys.executable, "-m", "celery", "-A", "benchmarks.celery_app", "worker", "--pool=solo",
                 "-Q", queue, "-n", f"bench{index}-{queue}@%h", "--without-gossip", "--without-mingle",
                 "--without-heartbeat", "-l", "INFO"],
                stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=ROOT, env=env))
    deadline = time.monotonic() + 120
    for index, worker in enumerate(workers):
        log = logs / f"worker-{queue}-{index}.log"
        while " ready." not in log.read_text(errors="replace"):
            if worker.poll() is not None or time.monotonic() > deadline:
                _stop(workers)
                raise RuntimeError(f"a celery worker did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
    return workers


def _stop(workers: list[subprocess.Popen[bytes]]) -> None:
    for worker in workers:
        if worker.poll() is None:
            os.killpg(worker.pid, signal.SIGKILL)
        worker.wait(timeout=30)


def _finished(storages: list[TriggerStorageBackend]) -> int:
    done = 0
    for storage in storages:
        storage.invalidate_cache()
        done += storage.instance_count("t_job") - len(
            [i for i in storage.get_unresolved_instances() if i.status is not InstanceStatus.FINISHED])
    return done


def measure(runner: TaskRunner, prefix: str, fires: int) -> dict[str, float]:
    """Fire ``fires`` times round-robin into :data:`SESSIONS` sessions; time fires and completions."""
    options = {"url": POSTGRESQL_URL, "table_prefix": prefix}
    storages = [storage_backends.get("sql", f"bench-{uuid.uuid4().hex[:8]}", **options) for _ in range(SESSIONS)]
    managers = [TriggerManager(storage, runner=runner) for storage in storages]
    for manager in managers:
        manager.update_configuration(CONFIGURATION)
    started = time.perf_counter()
    for number in range(fires):
        managers[number % SESSIONS].fire("job", {"n": number})
    fired = time.perf_counter() - started
    deadline = time.monotonic() + WAIT
    while _finished(storages) < fires:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {_finished(storages)} of {fires} instances finished in {WAIT:g} s")
        time.sleep(0.02)
    completed = time.perf_counter() - started
    for storage in storages:
        storage.close()
    return {"fires": fires, "fires_per_s": round(fires / fired, 1),
            "completions_per_s": round(fires / completed, 1)}


def run(quick: bool, broker_name: str, log: Callable[[str], None]) -> dict[str, Any]:
    broker = BROKERS[broker_name]
    fires = 40 if quick else 400
    worker_counts = [1] if quick else [1, 2, 4]
    prefix = f"cb{uuid.uuid4().hex[:8]}_"
    rows: list[dict[str, Any]] = []
    try:
        threading_runner = ThreadingTaskRunner(max_workers=4)
        try:
            measure(threading_runner, prefix, 16)  # warm-up: connections, tables, imports
            rows.append({"runner": "threading", "workers": 4, **measure(threading_runner, prefix, fires)})
        finally:
            threading_runner.close()
        log(f"threading: {rows[-1]}")
        with tempfile.TemporaryDirectory(prefix="triggers-bench-celery-") as logs:
            for count in worker_counts:
                queue = f"triggers-bench-{uuid.uuid4().hex[:10]}"
                _app, runner = make_app(broker, queue)
                workers = _start_workers(count, broker, queue, Path(logs))
                try:
                    measure(runner, prefix, 8 * count)  # warm-up: each worker's first task connects
                    rows.append({"runner": f"celery ({broker_name})", "workers": count,
                                 **measure(runner, prefix, fires)})
                finally:
                    _stop(workers)
                    with Connection(broker) as connection:
                        connection.default_channel.queue_delete(queue)
                log(f"celery with {count} workers: {rows[-1]}")
    finally:
        from triggers_sql.schema import tables

        engine = create_engine(POSTGRESQL_URL)
        try:
            tables(prefix, None).metadata.drop_all(engine)
        finally:
            engine.dispose()
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"), "quick": quick,
            "broker": broker_name, "sessions": SESSIONS, "cpus": os.cpu_count(), "rows": rows}


def table(result: dict[str, Any]) -> str:
    lines = ["| runner | workers | fires/s | completions/s |", "| --- | ---: | ---: | ---: |"]
    lines += [f"| {row['runner']} | {row['workers']} | {row['fires_per_s']:,} | {row['completions_per_s']:,} |"
              for row in result["rows"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.celery_runner", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="40 fires and one worker (a smoke run)")
    parser.add_argument("--broker", choices=sorted(BROKERS), default="redis")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    arguments = parser.parse_args(argv)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    result = run(arguments.quick, arguments.broker, log)
    arguments.out.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = arguments.out / f"celery-{stamp}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    print(table(result))
    print(f"\nwritten: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
