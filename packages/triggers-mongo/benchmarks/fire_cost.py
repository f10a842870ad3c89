"""How much a fire costs on the mongo backend, as ratios measured side by side.

Prints, for each save path (transactions on / off):

* a fire in a session with 10 finished instances vs one with 10,000
  (the design's target: at most 1.5x);
* the backend's fire vs the raw driver doing the least I/O one locked
  read-modify-write of the same session needs (take the lease, read the header
  and the active items, write one item, move the version, release).

Usage (starts SecantusDB in memory when ``--url`` is not given)::

    ./run python packages/triggers-mongo/benchmarks/fire_cost.py [--url URL] [--fires 30]
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import socket
import statistics
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from pymongo import MongoClient

from triggers.manager import TriggerManager
from triggers.types import InstanceStatus
from triggers_mongo import MongoStorageBackend

NOOP = "triggers_conformance.tasks.noop"


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
        [
            program,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--storage-path",
            ":memory:",
            "--log-level",
            "WARNING",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
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


def median_seconds(action: Callable[[], None], repeat: int) -> float:
    timings = []
    for _ in range(repeat):
        start = time.perf_counter()
        action()
        timings.append(time.perf_counter() - start)
    return statistics.median(timings)


def session(options: dict[str, Any], uid: str, history: int) -> TriggerManager:
    storage = MongoStorageBackend(uid, **options)
    manager = TriggerManager(storage)
    manager.update_configuration(
        {
            "t_history": {"run": NOOP, "after": ["start"]},
            "t_page": {"run": NOOP, "after": ["start"], "andEvery": "page"},
        }
    )
    manager.fire("start")
    with storage.acquire_lock():
        for n in range(history):
            storage.create_instance(
                "t_history", status=InstanceStatus.FINISHED, kwargs={"start": {"n": n}}
            )
        storage.save()
    storage.close()
    return TriggerManager(MongoStorageBackend(uid, **options))


def raw_cycle(client: MongoClient[dict[str, Any]], database: str, prefix: str, uid: str) -> None:
    """The least I/O of one locked read-modify-write, in plain pymongo."""
    sessions = client[database][f"{prefix}_sessions"]
    items = client[database][f"{prefix}_items"]
    token = secrets.token_hex(16)
    now = time.time()
    sessions.update_one(
        {"_id": uid, "lease_expires": {"$lte": now}},
        {"$set": {"lease_token": token, "lease_expires": now + 30}},
    )
    header = sessions.find_one({"_id": uid})
    assert header is not None
    active = list(items.find({"session": header["key"], "active": True}))
    items.update_one({"_id": active[0]["_id"]}, {"$set": {"record": active[0]["record"]}})
    sessions.update_one(
        {"_id": uid, "version": header["version"], "lease_token": token},
        {
            "$set": {
                "version": header["version"] + 1,
                "writer": header["writer"],
                "settled": header["version"] + 1,
            }
        },
    )
    sessions.update_one({"_id": uid, "lease_token": token}, {"$set": {"lease_expires": 0.0}})


def measure(
    client: MongoClient[dict[str, Any]],
    url: str,
    database: str,
    transactions: str,
    history: int,
    fires: int,
) -> None:
    prefix = f"bench_{transactions}"
    options = {"url": url, "database": database, "collection": prefix, "transactions": transactions}
    small = session(options, "small", 10)
    big = session(options, "big", history)
    fire_small = median_seconds(lambda: small.fire("page", {"n": 1}), fires)
    fire_big = median_seconds(lambda: big.fire("page", {"n": 1}), fires)
    raw = median_seconds(lambda: raw_cycle(client, database, prefix, "big"), fires)
    print(
        f"transactions={transactions}: fire in a session of 10: {fire_small * 1000:.1f} ms; "
        f"of {history:,}: {fire_big * 1000:.1f} ms; ratio {fire_big / fire_small:.2f}x"
    )
    print(
        f"  raw pymongo read-modify-write cycle: {raw * 1000:.1f} ms; a fire "
        f"(3 locked saves) costs {fire_big / raw:.1f}x one cycle"
    )


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
            for transactions in ("on", "off"):
                measure(client, url, database, transactions, arguments.history, arguments.fires)
        finally:
            client.drop_database(database)
            client.close()


if __name__ == "__main__":
    main()
