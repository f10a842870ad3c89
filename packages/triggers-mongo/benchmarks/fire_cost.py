"""What a fire costs on the mongo backend, for each save path, side by side with the floor.

The project's benchmark (``./run python -m benchmarks --targets mongo``)
measures the default path (``transactions="auto"``: on, on SecantusDB). This
script measures both, in one process, alternating, so their ratios compare:

* a *queued fire* (the trigger applied and one instance scheduled: one
  optimistic change) and an eager *fire* (that, then the task run and its
  outcome recorded: two changes), in sessions of 10 and of ``--history``
  finished instances;
* the commands each sends (pymongo command monitoring), by name;
* the *floor*: ``find_one`` plus a conditional ``update_one`` of a 512-byte
  document, as ``benchmarks/floor.py`` does it.

Usage (starts SecantusDB in memory when ``--url`` is not given)::

    ./run python packages/triggers-mongo/benchmarks/fire_cost.py [--url URL] [--fires 30]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import statistics
import subprocess
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pymongo import MongoClient, monitoring

from triggers.manager import TriggerManager
from triggers.runners import TaskRunner
from triggers.types import InstanceStatus
from triggers_mongo import MongoStorageBackend

NOOP = "triggers_conformance.tasks.noop"
TASKS = {
    "t_history": {"run": NOOP, "after": ["start"]},
    "t_page": {"run": NOOP, "after": ["start"], "andEvery": "page"},
    "t_job": {"run": NOOP, "after": ["start"], "andEvery": "job", "using": "queue"},
}


class _Commands(monitoring.CommandListener):
    def __init__(self) -> None:
        self.sent: Counter[str] | None = None

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        if self.sent is not None:
            self.sent[event.command_name] += 1

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


COMMANDS = _Commands()
monitoring.register(COMMANDS)  # before any client exists


class _Queue(TaskRunner):
    """Queues instead of running (a task queue's producer side)."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[str] = []

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        self.queued.append(instance_name)


@contextmanager
def server(url: str | None) -> Iterator[str]:
    """``url``, or a SecantusDB started in memory on a free port (stopped at the end)."""
    if url is not None:
        yield url
        return
    program = shutil.which("secantusd-py")
    if program is None:
        raise SystemExit("no --url and secantusd-py is not installed")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [program, "--host", "127.0.0.1", "--port", str(port), "--storage-path", ":memory:",
         "--log-level", "WARNING"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    started = f"mongodb://127.0.0.1:{port}"
    try:
        client: MongoClient[dict[str, Any]] = MongoClient(started, serverSelectionTimeoutMS=30_000)
        client.admin.command("ping")
        client.close()
        yield started
    finally:
        process.terminate()
        process.wait(timeout=10)


def session(options: dict[str, Any], uid: str, history: int) -> tuple[TriggerManager, _Queue]:
    storage = MongoStorageBackend(uid, **options)
    queue = _Queue()
    manager = TriggerManager(storage, runners={"queue": queue})
    manager.update_configuration(TASKS)
    manager.fire("start")
    with storage.acquire_lock():
        for n in range(history):
            storage.create_instance(
                "t_history", status=InstanceStatus.FINISHED, kwargs={"start": {"n": n}}
            )
        storage.save()
    return manager, queue


def timed(action: Callable[[], object], after: Callable[[], object], repeat: int) -> float:
    """Median milliseconds of ``action`` (``after`` runs untimed after each)."""
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
        after()
    return statistics.median(timings) * 1000


def counted(action: Callable[[], object]) -> Counter[str]:
    COMMANDS.sent = Counter()
    try:
        action()
        return COMMANDS.sent
    finally:
        COMMANDS.sent = None


def floor(client: MongoClient[dict[str, Any]], database: str, repeat: int) -> float:
    """Milliseconds of one read plus one conditional write of a 512-byte document."""
    collection = client[database]["floor"]
    collection.replace_one({"_id": 1}, {"_id": 1, "version": 0, "document": "x" * 512}, upsert=True)

    def cycle() -> None:
        stored = collection.find_one({"_id": 1})
        assert stored is not None
        version = stored["version"]
        collection.update_one({"_id": 1, "version": version}, {"$set": {"version": version + 1}})

    return timed(cycle, lambda: None, repeat)


def measure(url: str, database: str, transactions: str, history: int, fires: int) -> None:
    options = {"url": url, "database": database, "collection": f"bench_{transactions}",
               "transactions": transactions}
    for size in (10, history):
        measure_session(*session(options, f"s{size}", size), transactions, size, fires)


def measure_session(
    manager: TriggerManager, queue: _Queue, transactions: str, size: int, fires: int
) -> None:
    def work_off() -> None:
        while queue.queued:
            manager.run_instance(queue.queued.pop(0))

    queued = timed(lambda: manager.fire("job", {"n": 1}), work_off, fires)
    fire = timed(lambda: manager.fire("page", {"n": 1}), lambda: None, fires)
    sent = counted(lambda: manager.fire("job", {"n": 2}))
    work_off()
    print(f"  transactions={transactions}, {size:>6,} instances: queued fire {queued:6.1f} ms, "
          f"fire {fire:6.1f} ms; a queued fire sends {sum(sent.values())}: {dict(sent)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url")
    parser.add_argument("--fires", type=int, default=30)
    parser.add_argument("--history", type=int, default=10_000)
    arguments = parser.parse_args()
    with server(arguments.url) as url:
        database = f"triggers_bench_{uuid.uuid4().hex[:8]}"
        client: MongoClient[dict[str, Any]] = MongoClient(url)
        try:
            print(f"floor (find_one + conditional update_one): {floor(client, database, arguments.fires):.1f} ms")
            for transactions in ("on", "off"):
                measure(url, database, transactions, arguments.history, arguments.fires)
            print(f"floor again: {floor(client, database, arguments.fires):.1f} ms")
        finally:
            client.drop_database(database)
            client.close()


if __name__ == "__main__":
    main()
