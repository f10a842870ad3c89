"""What a fire costs in a small and in a big session, side by side in one run.

    ./run python packages/triggers-dynamodb/benchmarks/fire_cost.py [--endpoint-url URL] [--big N]

Builds two sessions in a fresh table (10 and N finished instances), then
five times adds a task and fires its trigger into each (a new session object
per fire, as another process would: the task's instance is created, run and
finished), and reports per fire: requests by
operation, items read by queries, items written by transactions and the
median wall time, next to the same server doing a fire's minimum I/O by hand
(twice a Query and a one-item transaction: "raw ms"), plus the big/small ratios. Without ``--endpoint-url`` it
starts the tests' moto server on a free port and stops it afterwards. Ratios
compare fairly within one run; absolute times depend on the machine and
on the server (moto copies the whole table on every transaction, so its
write times grow with the table; DynamoDB's do not).
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

TESTS = Path(__file__).resolve().parent.parent / "tests"
sys.path.insert(0, str(TESTS))

from dynamodb_counting import traffic  # noqa: E402

from triggers.manager import TriggerManager  # noqa: E402
from triggers.types import InstanceStatus  # noqa: E402
from triggers_dynamodb import DynamoDBStorageBackend, create_table  # noqa: E402
from triggers_dynamodb.clients import client_for  # noqa: E402

NOOP = "triggers_conformance.tasks.noop"
FIRES = 5


def _build(options: dict[str, Any], uid: str, history: int) -> None:
    storage = DynamoDBStorageBackend(uid, **options)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_history": {"run": NOOP, "after": ["start"]}})
    manager.fire("start")
    while storage.instance_count("t_history") < history:
        with storage.acquire_lock():
            for _ in range(min(90, history - storage.instance_count("t_history"))):
                storage.create_instance("t_history", status=InstanceStatus.FINISHED)
            storage.save()
    storage.close()


def _fires(options: dict[str, Any], uid: str) -> dict[str, Any]:
    times: list[float] = []
    totals: dict[str, Any] = {}
    for n in range(FIRES):
        trigger = f"go{n}"
        setup = DynamoDBStorageBackend(uid, **options)
        TriggerManager(setup).update_configuration({f"t_{n}": {"run": NOOP, "after": [trigger]}})
        storage = DynamoDBStorageBackend(uid, **options)
        with traffic(storage.client) as seen:
            started = time.perf_counter()
            TriggerManager(storage).fire(trigger)
            times.append(time.perf_counter() - started)
        totals = {
            "requests": sum(seen.requests.values()),
            "items read": seen.items_read,
            "items written": seen.items_written,
        }
    return {**totals, "median ms": 1000 * statistics.median(times), "raw ms": _raw(options, uid)}


def _raw(options: dict[str, Any], uid: str) -> float:
    """The minimum I/O of an eager fire by hand: twice a Query of the active range and a one-item
    transaction (schedule and claim the instance; record its outcome)."""
    client = client_for(options["region_name"], options["endpoint_url"])
    times = []
    for n in range(FIRES):
        started = time.perf_counter()
        for step in range(2):
            client.query(
                TableName=options["table_name"],
                KeyConditionExpression="pk = :uid AND sk < :end",
                ExpressionAttributeValues={":uid": {"S": uid}, ":end": {"S": "R"}},
                ConsistentRead=True,
            )
            item = {"pk": {"S": f"{uid}-raw"}, "sk": {"S": f"{n}-{step}"}}
            client.transact_write_items(
                TransactItems=[{"Put": {"TableName": options["table_name"], "Item": item}}]
            )
        times.append(time.perf_counter() - started)
    return 1000 * statistics.median(times)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoint-url", default=None)
    parser.add_argument("--region-name", default="us-east-1")
    parser.add_argument("--big", type=int, default=1000)
    arguments = parser.parse_args()
    server = None
    endpoint = arguments.endpoint_url
    if endpoint is None:
        os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
        os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
        port = _free_port()
        server = subprocess.Popen(
            [sys.executable, str(TESTS / "dynamodb_moto_server.py"), str(port)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                time.sleep(0.1)
    client = client_for(arguments.region_name, endpoint)
    table = f"triggers-bench-{uuid.uuid4().hex[:10]}"
    try:
        create_table(client, table)
        options = {"table_name": table, "region_name": arguments.region_name, "endpoint_url": endpoint}
        results = {}
        for size in (10, arguments.big):
            uid = f"bench-{size}"
            _build(options, uid, size)
            results[size] = _fires(options, uid)
        print(f"fire cost (median of {FIRES} fires; server {endpoint})")
        for size, result in results.items():
            print(f"  {size:>6} finished instances: {result}")
        small, big = results[10], results[arguments.big]
        ratios = {key: round(big[key] / small[key], 2) for key in small if small[key]}
        print(f"  ratio big/small: {ratios}")
    finally:
        client.delete_table(TableName=table)
        if server is not None:
            server.terminate()
            server.wait(timeout=10)


if __name__ == "__main__":
    main()
