"""What the dynamodb backend does at the server: items, transactions, limits, leases, errors."""

from __future__ import annotations

import math
import re
import subprocess
import sys
import time
import uuid
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from dynamodb_counting import traffic
from dynamodb_servers import DynamoDB

from triggers import storage_backends
from triggers.errors import (
    ClockSkewError,
    ConfigurationError,
    ContentionError,
    CorruptSessionError,
    SchemaError,
    SessionLimitError,
    StaleSessionError,
    StorageError,
)
from triggers.manager import TriggerManager
from triggers.runners import TaskRunner
from triggers.storage import SessionChanges
from triggers.types import InstanceStatus
from triggers_conformance.spans import recorded_spans, round_trips
from triggers_dynamodb import DynamoDBStorageBackend, DynamoDBStore, errors, expiry, loading, skew
from triggers_dynamodb.items import ITEM_BYTES_LIMIT, item_bytes, record_item
from triggers_dynamodb.store import MAX_RECORD_BYTES

NOOP = "triggers_conformance.tasks.noop"


def _open(dynamodb: DynamoDB, uid: str = "s", **options: Any) -> DynamoDBStorageBackend:
    return DynamoDBStorageBackend(uid, **dynamodb.options, **options)


def _items(dynamodb: DynamoDB, uid: str) -> dict[str, dict[str, Any]]:
    """Every stored item of a session, by sort key (read directly, for inspection)."""
    pages = dynamodb.client().get_paginator("query").paginate(
        TableName=dynamodb.table_name,
        KeyConditionExpression="pk = :uid",
        ExpressionAttributeValues={":uid": {"S": uid}},
        ConsistentRead=True,
    )
    return {item["sk"]["S"]: item for page in pages for item in page["Items"]}


# -- the table -------------------------------------------------------------------


def _cli(dynamodb: DynamoDB, *arguments: str) -> subprocess.CompletedProcess[str]:
    endpoint = ["--endpoint-url", dynamodb.endpoint_url] if dynamodb.endpoint_url else []
    return subprocess.run(
        [sys.executable, "-m", "triggers_dynamodb", *arguments, "--region-name",
         dynamodb.region_name, *endpoint],
        capture_output=True, text=True, timeout=120, check=False,
    )


def test_the_create_table_command_creates_the_table_once(dynamodb_server: DynamoDB) -> None:
    where = DynamoDB(f"triggers-cli-{uuid.uuid4().hex[:10]}", dynamodb_server.endpoint_url,
                     dynamodb_server.region_name)
    try:
        missing = _cli(where, "check-table", "--table-name", where.table_name)
        assert missing.returncode == 1 and "create-table" in missing.stderr
        with pytest.raises(SchemaError, match="does not exist"):
            DynamoDBStorageBackend("s", **where.options)

        created = _cli(where, "create-table", "--table-name", where.table_name)
        assert created.returncode == 0, created.stderr
        assert "created table" in created.stdout and "enabled time to live" in created.stdout
        again = _cli(where, "create-table", "--table-name", where.table_name)
        assert again.returncode == 0 and "exists" in again.stdout and "created" not in again.stdout

        table = where.client().describe_table(TableName=where.table_name)["Table"]
        assert table["BillingModeSummary"]["BillingMode"] == "PAY_PER_REQUEST"
        ttl = where.client().describe_time_to_live(TableName=where.table_name)
        assert ttl["TimeToLiveDescription"]["AttributeName"] == "expires_at"
        assert DynamoDBStorageBackend.check_schema(**where.options)[0].startswith(
            f"table {where.table_name}: ACTIVE"
        )
        storage = DynamoDBStorageBackend("s", **where.options)  # create_table=False: it exists
        with storage.acquire_lock():
            storage.metadata["k"] = "v"
            storage.save()
        assert list(DynamoDBStorageBackend.session_uids(**where.options)) == ["s"]
    finally:
        where.client().delete_table(TableName=where.table_name)


def test_create_table_option_creates_a_missing_table(dynamodb_server: DynamoDB) -> None:
    where = DynamoDB(f"triggers-opt-{uuid.uuid4().hex[:10]}", dynamodb_server.endpoint_url,
                     dynamodb_server.region_name)
    try:
        storage = storage_backends.get("dynamodb", "s", **where.options, create_table=True)
        assert isinstance(storage, DynamoDBStorageBackend)
        with storage.acquire_lock():
            storage.metadata["k"] = "v"
            storage.save()
        assert _open(where).metadata == {"k": "v"}
    finally:
        where.client().delete_table(TableName=where.table_name)


def test_a_table_keyed_otherwise_is_refused(dynamodb_server: DynamoDB) -> None:
    name = f"triggers-other-{uuid.uuid4().hex[:10]}"
    where = DynamoDB(name, dynamodb_server.endpoint_url, dynamodb_server.region_name)
    client = where.client()
    client.create_table(
        TableName=name,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    try:
        with pytest.raises(SchemaError, match="partition key pk"):
            _open(where)
    finally:
        client.delete_table(TableName=name)


def test_a_table_lost_while_running_is_reported_until_an_operator_creates_it(
    dynamodb: DynamoDB,
) -> None:
    # What a restart of an in-memory server (moto) does to a running application.
    storage = _open(dynamodb, "lost")
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": {"after": ["go"], "run": NOOP}})
    manager.fire("go")
    client = dynamodb.client()
    client.delete_table(TableName=dynamodb.table_name)
    client.get_waiter("table_not_exists").wait(TableName=dynamodb.table_name)

    storage.invalidate_cache()
    errors = []
    for uid, operation in [
        ("lost", lambda: storage.instances),
        ("lost", lambda: manager.fire("go")),
        ("other", lambda: _open(dynamodb, "other").metadata),  # a new object of the same process
    ]:
        with pytest.raises(SchemaError) as caught:
            operation()
        message = str(caught.value)
        assert f"session {uid!r}" in message
        assert f"table {dynamodb.table_name!r} does not exist" in message
        errors.append(message)
    command = errors[0].split("`")[1]
    assert command.startswith("triggers --backend dynamodb") and command.endswith("schema create")
    assert dynamodb.table_name not in client.list_tables()["TableNames"]  # nothing created it

    # The operator runs the command the error names; the same objects work again.
    done = subprocess.run([sys.executable, "-m", *command.split()], capture_output=True, text=True,
                          timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    storage.invalidate_cache()
    assert (dict(storage.instances), storage.metadata, storage.tasks) == ({}, {}, {})
    manager.update_configuration({"t_a": {"after": ["go"], "run": NOOP}})
    manager.fire("go")
    assert _open(dynamodb, "lost").instances["t_a#0"].status is InstanceStatus.FINISHED


# -- options and errors -----------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({}, "table_name"),
        ({"table_name": "x"}, "table_name"),
        ({"table_name": "triggers", "client": object()}, "client="),
        ({"table_name": "triggers", "client": "c", "region_name": "us-east-1"}, "not both"),
        ({"table_name": "triggers", "endpoint_url": 5}, "endpoint_url"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        DynamoDBStorageBackend("s", **options)


def test_an_unreachable_endpoint_is_a_clear_storage_error() -> None:
    # One attempt: the default client retries connection errors with backoff.
    client = boto3.session.Session().client(
        "dynamodb", region_name="us-east-1", endpoint_url="http://127.0.0.1:9",
        config=Config(retries={"total_max_attempts": 1}, connect_timeout=2),
    )
    with pytest.raises(StorageError, match=r"not reachable at http://127\.0\.0\.1:9") as caught:
        DynamoDBStorageBackend("s", table_name="triggers", client=client)
    assert caught.value.__cause__ is not None


def test_an_existing_client_can_be_passed_but_not_a_resource(dynamodb: DynamoDB) -> None:
    session = boto3.session.Session()
    where = {"region_name": dynamodb.region_name, "endpoint_url": dynamodb.endpoint_url}
    client = session.client("dynamodb", **where)
    storage = DynamoDBStorageBackend("s", table_name=dynamodb.table_name, client=client)
    assert storage.client is client
    with storage.acquire_lock():
        storage.metadata["via"] = "client"
        storage.save()
    assert _open(dynamodb).metadata == {"via": "client"}
    with pytest.raises(ConfigurationError, match="not a boto3 resource"):
        DynamoDBStorageBackend(
            "s", table_name=dynamodb.table_name, client=session.resource("dynamodb", **where)
        )


def test_one_client_per_configuration_is_shared(dynamodb: DynamoDB) -> None:
    assert _open(dynamodb, "a").client is _open(dynamodb, "b").client


def test_the_store_says_where_it_is_and_checks_its_table_once(dynamodb: DynamoDB) -> None:
    store = DynamoDBStorageBackend.store_for(**dynamodb.options)
    assert store.describe() == (
        f"DynamoDB table {dynamodb.table_name!r} at {dynamodb.endpoint_url} (region {dynamodb.region_name})"
    )
    fresh = DynamoDBStore(**dynamodb.options)  # not prepared yet, unlike the shared one
    with traffic(fresh.client) as seen:
        fresh.prepare_once()
        fresh.prepare_once()
    assert seen.requests == {"DescribeTable": 1}


def test_which_botocore_errors_are_tried_again() -> None:
    def refused(code: str, **metadata: Any) -> ClientError:
        return ClientError({"Error": {"Code": code, "Message": ""}, "ResponseMetadata": metadata}, "Query")

    # Throttling that botocore stopped retrying early (its retry quota ran out)...
    assert errors.is_transient(refused("ProvisionedThroughputExceededException", RetryQuotaReached=True))
    # ...but not once it made every attempt it was allowed.
    assert not errors.is_transient(refused("ThrottlingException", MaxAttemptsReached=True))
    assert errors.is_transient(refused("TransactionConflictException"))  # botocore never resends it
    assert not errors.is_transient(refused("ValidationException"))
    # Connection errors were resent by botocore as often as the client allows.
    assert not errors.is_transient(EndpointConnectionError(endpoint_url="http://127.0.0.1:9"))


class _Colliding:
    """The client, whose first lease update of each kind collides with a transaction in flight."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.collided: list[str] = []

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.client, attribute)

    def update_item(self, **request: Any) -> Any:
        kind = request["UpdateExpression"] + " IF " + request["ConditionExpression"]
        if kind not in self.collided:
            self.collided.append(kind)
            raise ClientError({"Error": {"Code": "TransactionConflictException", "Message": "in flight"}},
                              "UpdateItem")
        return self.client.update_item(**request)


def test_a_lease_update_colliding_with_a_save_is_tried_again(dynamodb: DynamoDB) -> None:
    client = _Colliding(dynamodb.client())
    storage = DynamoDBStorageBackend("s", table_name=dynamodb.table_name, client=client)
    with storage.acquire_lock():  # taking: "not now", polled again
        storage.renew_lock()  # renewing and releasing: retried by the core
        storage.metadata["k"] = 1
        storage.save()
    assert len(client.collided) == 4  # take (free, then taken over), renew, release
    assert "lease_token" not in _items(dynamodb, "s")["#"]


def test_the_bare_store_reads_what_a_save_is_based_on(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": {"run": NOOP, "after": ["go"]}})
    manager.fire("go")  # version 3: configured, scheduled, finished
    store = DynamoDBStorageBackend.store_for(**dynamodb.options)
    changes = SessionChanges("s", base_version=3, new_version=4, lease=None, metadata={"k": 1},
                             written_at=time.time())
    store.write("s", changes)  # no session object's view: the store reads the session first
    fresh = _open(dynamodb)
    assert fresh.metadata["k"] == 1 and fresh["t_a#0"].status is InstanceStatus.FINISHED
    with pytest.raises(StaleSessionError, match="the stored version is 4, this writer loaded 3"):
        store.write("s", changes)


# -- values ------------------------------------------------------------------------


def test_floats_beyond_dynamodb_numbers_round_trip_exactly(dynamodb: DynamoDB) -> None:
    # DynamoDB numbers hold 38 digits within 1e-130..1e126 and lose 1 vs 1.0:
    # records are JSON text, so every float comes back bit for bit.
    floats = [0.1, 1e308, -1.7976931348623157e308, 5e-324, 2.2250738585072014e-308, -0.0,
              1.0, 123456789.12345679, 1 / 3, 1e126, 1e-131]
    stored = {"floats": floats, "ints": [0, -(2**63), 2**63 - 1, 10**18 + 1], "empty": "",
              "": {"": [""]}, "$x": {"a.b": None}, "deep": [[[[{"k": [1.5]}]]]]}
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.metadata.update(stored)
        storage.save()
    loaded = _open(dynamodb).metadata
    assert loaded == stored
    for before, after in zip(floats, loaded["floats"], strict=True):
        assert type(after) is float and after.hex() == before.hex()
    assert math.copysign(1.0, loaded["floats"][5]) == -1.0
    assert all(type(n) is int for n in loaded["ints"])


def test_names_longer_than_a_sort_key_round_trip(dynamodb: DynamoDB) -> None:
    task = "t_" + "é" * 800  # 1,602 bytes: too long for a literal sort key
    key = "k" * 5000
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.update_configuration({task: {"run": NOOP, "after": ["x"]}})
        storage.create_instance(task, kwargs={"x": {"n": 1}})
        storage.metadata[key] = "long"
        storage.save()
    fresh = _open(dynamodb)
    assert fresh[f"{task}#0"].kwargs == {"x": {"n": 1}}
    assert fresh.metadata[key] == "long"
    assert all(len(sk.encode()) <= 1024 for sk in _items(dynamodb, "s"))


# -- size and transaction limits ---------------------------------------------------


def test_a_metadata_value_at_the_record_limit_is_stored_and_one_over_is_refused(
    dynamodb: DynamoDB,
) -> None:
    storage = _open(dynamodb)
    # The declared record limit leaves room for the item's own attributes.
    fits = "p" * (MAX_RECORD_BYTES - 2)  # its JSON text, quotes included, is the limit
    with storage.acquire_lock():
        storage.metadata["pad"] = fits
        storage.save()
    assert item_bytes(_items(dynamodb, "s")["M#pad"]) <= ITEM_BYTES_LIMIT
    with storage.acquire_lock():
        storage.metadata["pad"] = fits + "p"
        storage.metadata["other"] = "changed"
        with pytest.raises(SessionLimitError, match=rf"metadata 'pad' takes {MAX_RECORD_BYTES + 1} bytes"):
            storage.save()
    fresh = _open(dynamodb)
    assert fresh.metadata["pad"] == fits and "other" not in fresh.metadata


def test_an_instance_too_large_for_an_item_is_refused_by_name(dynamodb: DynamoDB) -> None:
    # Its record is under the declared record limit, but its long name (stored
    # with it) makes the item too large.
    task = "t_" + "n" * 15_000
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.update_configuration({task: {"run": NOOP, "after": ["x"]}})
        storage.save()
    with storage.acquire_lock():
        storage.create_instance(task, metadata={"pad": "p" * 380_000})
        with pytest.raises(SessionLimitError, match=rf"instance '{task}#0' takes \d+ bytes"):
            storage.save()
    assert _open(dynamodb).instance_count(task) == 0
    assert not any(sk.startswith(("I", "R")) for sk in _items(dynamodb, "s"))


def test_a_save_of_more_than_one_transaction_is_refused_before_writing(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.update_configuration({"t_a": {"run": NOOP, "after": ["x"]}})
        storage.create_instance("t_a")
        storage.save()
    with storage.acquire_lock():
        storage["t_a#0"].metadata["changed"] = True
        for _ in range(100):
            storage.create_instance("t_a")
        with pytest.raises(SessionLimitError, match=r"writes 102 items.*Nothing was written"):
            storage.save()
    fresh = _open(dynamodb)
    assert list(fresh.instances) == ["t_a#0"] and "changed" not in fresh["t_a#0"].metadata
    assert fresh.instance_count("t_a") == 1


def test_a_save_over_4_mb_is_refused_before_writing(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.update_configuration({"t_a": {"run": NOOP, "after": ["x"]}})
        for _ in range(11):  # each item fits, all of them do not fit one transaction
            storage.create_instance("t_a", metadata={"pad": "p" * 380_000})
        with pytest.raises(SessionLimitError, match=r"writes \d+ bytes.*at most 4000000"):
            storage.save()
    assert _open(dynamodb).tasks == {} and _items(dynamodb, "s").keys() <= {"#"}


def test_a_save_of_exactly_one_full_transaction_is_written_whole(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb)
    with traffic(storage.client) as seen, storage.acquire_lock():
        storage.update_configuration({"t_a": {"run": NOOP, "after": ["x"]}})
        for _ in range(97):  # + the config, the instance counter and the header: 100
            storage.create_instance("t_a")
        storage.save()
    assert [len(actions) for actions in seen.transactions] == [100]
    assert len(_open(dynamodb).instances) == 97


# -- big sessions: what a fire costs -----------------------------------------------


class _Queue(TaskRunner):
    """Queues what is scheduled, as a task queue's producer does (the task runs elsewhere)."""

    def __init__(self) -> None:
        super().__init__()
        self.queued: list[str] = []

    def run(self, manager: TriggerManager, instance_name: str) -> None:
        self.queued.append(instance_name)


def test_a_session_of_1000_instances_loads_whole_and_fires_cheaply(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb, "big")
    manager = TriggerManager(storage, runners={"queue": _Queue()})
    manager.update_configuration({
        "t_history": {"run": NOOP, "after": ["start"], "andEvery": "page"},
        "t_a": {"run": NOOP, "after": ["start", "go"]},
        "t_job": {"run": NOOP, "after": ["start"], "andEvery": "job", "using": "queue"},
    })
    manager.fire("start")
    def count() -> int:  # without loading the history
        return storage.instance_count("t_history") + storage.instance_count("t_a")

    while count() < 1000:  # in saves that fit a transaction
        with storage.acquire_lock():
            for _ in range(min(97, 1000 - count())):
                storage.create_instance(
                    "t_history", status=InstanceStatus.FINISHED, kwargs={"page": {}, "start": {}}
                )
            storage.save()
    storage.close()

    with traffic(storage.client) as seen:
        everything = _open(dynamodb, "big").instances
    waiting = sorted(name for name, i in everything.items() if i.status != InstanceStatus.FINISHED)
    assert (len(everything), waiting) == (1001, ["t_a#0", "t_history#0", "t_job#0"])
    assert seen.requests == {"Query": 1} and seen.items_read == 1001 + 7

    # A queued fire: one Query of the active range (one page) and one transaction,
    # like the floor's read and conditional write. No lock is taken.
    queued = _open(dynamodb, "big")
    queue = _Queue()
    with traffic(queued.client) as seen:
        TriggerManager(queued, runners={"queue": queue}).fire("job")
    assert queue.queued == ["t_job#0"]
    assert seen.requests == {"Query": 1, "TransactWriteItems": 1}, seen
    # The header, 3 configs, 3 metadata keys, 3 waiting instances, a tombstone at most.
    assert seen.items_read <= 11, seen
    assert sorted(seen.transactions[0]) == [
        "Put:I#t_job#0", "Put:M#recentWrites", "Put:M#triggerKwargs", "Update:#",
    ]

    # An eager fire: the same twice (schedule and claim; record the outcome).
    fire = _open(dynamodb, "big")
    with traffic(fire.client) as seen:
        TriggerManager(fire).fire("go")
    assert fire["t_a#0"].status == InstanceStatus.FINISHED
    assert seen.requests == {"Query": 2, "TransactWriteItems": 2}, seen
    assert seen.items_read <= 2 * 12, seen  # never the 998 finished ones
    touched = {a for actions in seen.transactions for a in actions}
    assert all(not a.startswith("Put:R#t_history") for a in touched)
    assert max(len(actions) for actions in seen.transactions) <= 7, seen.transactions


def test_a_resolved_instance_moves_and_its_tombstone_is_swept(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": {"run": NOOP, "after": ["go"]}})
    with storage.acquire_lock():
        storage.create_instance("t_a")
        storage.metadata["gone"] = 1
        storage.save()
    assert "body" in _items(dynamodb, "s")["I#t_a#0"]
    manager.fire("go")
    with storage.acquire_lock():
        del storage.metadata["gone"]
        storage.save()
    items = _items(dynamodb, "s")
    assert "body" in items["R#t_a#0"]
    assert "I#t_a#0" not in items  # its tombstone was swept by a later save
    assert "body" not in items["M#gone"]  # a tombstone until the next save
    fresh = _open(dynamodb)
    assert "gone" not in fresh.metadata and fresh["t_a#0"].status == InstanceStatus.FINISHED
    with storage.acquire_lock():
        storage.metadata["later"] = 2
        storage.save()
    assert "M#gone" not in _items(dynamodb, "s")


# -- a load never sees half a save ---------------------------------------------------


def test_a_load_that_sees_part_of_a_save_reads_again(
    dynamodb: DynamoDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.metadata.update({"a": 0, "b": 0})
        storage.save()
    client, table = dynamodb.client(), dynamodb.table_name
    epoch = _items(dynamodb, "s")["#"]["g"]["S"]
    # Version 2 half applied, as a Query may see a transaction: one of its
    # two items is there, the header and the other item are not yet.
    client.put_item(TableName=table, Item=record_item("s", "M", "a", "2", 2, epoch=epoch))
    waits: list[int] = []

    def finish_the_save(attempt: int) -> None:
        waits.append(attempt)
        if attempt == 2:
            client.put_item(
                TableName=table, Item=record_item("s", "M", "b", "2", 2, epoch=epoch)
            )
            client.update_item(
                TableName=table, Key={"pk": {"S": "s"}, "sk": {"S": "#"}},
                UpdateExpression="SET version = :v, wa = :n",
                ExpressionAttributeValues={":v": {"N": "2"}, ":n": {"N": "2"}},
            )

    monkeypatch.setattr(loading, "_wait_for_save_in_flight", finish_the_save)
    assert _open(dynamodb).metadata == {"a": 2, "b": 2}
    assert waits == [0, 1, 2]


def test_a_save_that_never_completes_is_a_clear_error(
    dynamodb: DynamoDB, monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.metadata.update({"a": 0, "b": 0})
        storage.save()
    # The header says version 1 wrote 3 items in the active range; 2 exist.
    dynamodb.client().update_item(
        TableName=dynamodb.table_name, Key={"pk": {"S": "s"}, "sk": {"S": "#"}},
        UpdateExpression="SET wa = :n", ExpressionAttributeValues={":n": {"N": "4"}},
    )
    monkeypatch.setattr(loading, "_wait_for_save_in_flight", lambda attempt: None)
    with pytest.raises(StorageError, match="saw part of a save that never completed"):
        _ = _open(dynamodb).metadata


@pytest.mark.parametrize(
    ("item", "message"),
    [
        # An item of another layout is named by the store...
        ({"sk": {"S": "M#y"}, "v": {"N": "1"}, "body": {"S": "1"}}, r"item 'M#y'.*KeyError"),
        ({"sk": {"S": "Q#z"}, "name": {"S": "z"}, "v": {"N": "1"}, "body": {"S": "1"}},
         r"item 'Q#z'.*prefix 'Q'"),
        ({"sk": {"S": "M#m"}, "name": {"S": "m"}, "v": {"N": "1"}, "body": {"M": {}}}, r"item 'M#m'"),
        # ...a record whose text is no JSON (here the stored one, overwritten) by the
        # core, which parses every record.
        ({"sk": {"S": "M#ok"}, "name": {"S": "ok"}, "v": {"N": "1"}, "body": {"S": "{"}},
         r"session 's'.*could not be decoded"),
    ],
)
def test_an_item_not_written_by_the_backend_is_a_corrupt_session(
    dynamodb: DynamoDB, item: dict[str, Any], message: str
) -> None:
    storage = _open(dynamodb)
    with storage.acquire_lock():
        storage.metadata["ok"] = 1
        storage.save()
    epoch = _items(dynamodb, "s")["#"]["g"]
    dynamodb.client().put_item(
        TableName=dynamodb.table_name, Item={"pk": {"S": "s"}, "g": epoch, **item}
    )
    with pytest.raises(CorruptSessionError, match=message):
        _ = _open(dynamodb).metadata


# -- leases ----------------------------------------------------------------------------


def test_the_lease_lives_on_the_header_and_is_released(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb)
    with storage.acquire_lock() as lease:
        header = _items(dynamodb, "s")["#"]
        assert header["lease_token"]["S"] == lease.token
        other = _open(dynamodb)
        from triggers.errors import LockTimeoutError

        with pytest.raises(LockTimeoutError), other.acquire_lock(timeout=0.2):
            pass
        renewed = storage.renew_lock()
        assert float(_items(dynamodb, "s")["#"]["lease_expires"]["N"]) == renewed.expires_at
    assert "lease_token" not in _items(dynamodb, "s")["#"]


def test_a_clock_an_hour_ahead_is_refused_without_touching_the_live_lease(dynamodb: DynamoDB) -> None:
    holder = _open(dynamodb)
    ahead = _open(dynamodb, clock=lambda: time.time() + 3600)
    with holder.acquire_lock() as lease:
        with (
            pytest.raises(ClockSkewError, match=r"'s'.*about 360[01] s ahead of DynamoDB's"),
            ahead.acquire_lock(timeout=5),
        ):
            pass  # pragma: no cover - must not be reached
        assert _items(dynamodb, "s")["#"]["lease_token"]["S"] == lease.token
        holder.metadata["by"] = "holder"
        holder.save()
    assert _open(dynamodb).metadata == {"by": "holder"}


def test_a_clock_an_hour_behind_is_refused_and_gives_back_the_lease_it_took(
    dynamodb: DynamoDB,
) -> None:
    behind = _open(dynamodb, clock=lambda: time.time() - 3600)
    with pytest.raises(ClockSkewError, match="behind DynamoDB's"), behind.acquire_lock():
        pass  # pragma: no cover - must not be reached
    assert "lease_token" not in _items(dynamodb, "s").get("#", {})
    with _open(dynamodb).acquire_lock(timeout=0):  # free at once
        pass


@pytest.mark.parametrize(
    ("offset", "refused"),
    [(0.0, False), (0.9, False), (2.2, False), (2.3, True), (-0.9, False), (-1.1, True)],
)
def test_the_skew_bound_allows_for_the_date_header_resolution(offset: float, refused: bool) -> None:
    # DynamoDB's Date says 1000 s; the caller reads its clock just after the answer.
    local = 1000.0 + offset
    if refused:
        with pytest.raises(ClockSkewError):
            skew.check("s", local, 1000.0, 1.0)
    else:
        skew.check("s", local, 1000.0, 1.0)
    skew.check("s", local + 3600, 1000.0, None)  # None: no check
    skew.check("s", local + 3600, None, 1.0)  # no Date header: nothing to compare


@pytest.mark.parametrize("bad", [-1, float("inf"), float("nan"), "1", True])
def test_a_bad_max_clock_skew_is_refused_by_name(dynamodb: DynamoDB, bad: object) -> None:
    with pytest.raises(ConfigurationError, match="max_clock_skew"):
        _open(dynamodb, max_clock_skew=bad)


# -- saves without the lock (optimistic) ---------------------------------------------------


def test_an_optimistic_save_waits_out_the_skew_margin_of_an_expired_lease(dynamodb: DynamoDB) -> None:
    # The holder's clock is 40 s behind: its 10 s lease expired 30 s ago by real time.
    holder = _open(dynamodb, clock=lambda: time.time() - 40, max_clock_skew=None)
    wary = _open(dynamodb, max_clock_skew=60)  # leases count as expired 122.5 s after their stamp
    bolder = _open(dynamodb, max_clock_skew=10)  # ... 22.5 s after
    with holder.acquire_lock(ttl=10):
        holder.metadata["by"] = "holder"
        with pytest.raises(ContentionError) as refused:
            wary.transact(lambda: wary.metadata.update(by="wary"), timeout=0)
        message = str(refused.value)
        assert "session 's'" in message and "1 attempt(s)" in message
        assert re.search(r"locked by a lease holder: its lease expires at [\d.]+ by its holder's "
                         r"clock \(\d+\.\d s ago by this machine's\), and counts as expired only "
                         r"122\.5 s after that", message), message
        assert isinstance(refused.value.__cause__, StaleSessionError)
        bolder.transact(lambda: bolder.metadata.update(by="bolder"), timeout=0)
        with pytest.raises(StaleSessionError, match="another writer created the session first"):
            holder.save()  # the lease no longer protects it: the version moved
    assert _open(dynamodb).metadata == {"by": "bolder"}


def test_of_two_first_writers_of_a_session_exactly_one_wins(dynamodb: DynamoDB) -> None:
    first, second = _open(dynamodb, "new"), _open(dynamodb, "new")

    def overtaken() -> None:
        first.metadata["by"] = "first"
        # Between the first writer's load (no session) and its write, the second creates it.
        second.transact(lambda: second.metadata.update(by="second"), timeout=0)

    with pytest.raises(ContentionError, match=r"another writer created the session first; "
                                              r"nothing was written"):
        first.transact(overtaken, timeout=0)
    assert _open(dynamodb, "new").metadata == {"by": "second"}
    assert int(_items(dynamodb, "new")["#"]["version"]["N"]) == 1


def test_an_optimistic_save_with_a_clock_out_of_bounds_sends_nothing(dynamodb: DynamoDB) -> None:
    ahead = _open(dynamodb, clock=lambda: time.time() + 3600)
    with (
        traffic(ahead.client) as seen,
        pytest.raises(ClockSkewError, match=r"360[01] s ahead.*saving without the lock was refused"),
    ):
        ahead.transact(lambda: ahead.metadata.update(k=1))
    assert seen.requests == {"Query": 1}  # the load it was measured on; no write
    assert _items(dynamodb, "s") == {}


class _Resending:
    """A client whose transactions are sent twice, as botocore resends one whose answer was
    lost; moto, unlike DynamoDB, ignores the ClientRequestToken and judges the resend anew.
    ``between`` runs between the two sends."""

    def __init__(self, client: Any, between: Any = None) -> None:
        self.client, self.between, self.resent = client, between, 0

    def __getattr__(self, attribute: str) -> Any:
        return getattr(self.client, attribute)

    def transact_write_items(self, **request: Any) -> Any:
        self.client.transact_write_items(**request)
        if self.between is not None:
            self.between()
        self.resent += 1
        try:
            return self.client.transact_write_items(**request)
        except ClientError as error:
            error.response["ResponseMetadata"]["RetryAttempts"] = 1  # as botocore reports a resend
            raise


def _count(storage: DynamoDBStorageBackend) -> None:
    storage.metadata["n"] = storage.metadata.get("n", 0) + 1


def test_a_resent_save_that_had_landed_is_recognised_by_its_token(dynamodb: DynamoDB) -> None:
    client = _Resending(dynamodb.client())
    storage = DynamoDBStorageBackend("s", table_name=dynamodb.table_name, client=client)
    storage.transact(lambda: _count(storage))
    with storage.acquire_lock():
        _count(storage)
        storage.save()
    assert client.resent == 2  # each refused as stale by moto, and recognised as landed
    assert _open(dynamodb).metadata["n"] == 2


def test_a_resent_save_overtaken_meanwhile_is_not_applied_twice(dynamodb: DynamoDB) -> None:
    other = _open(dynamodb)
    client = _Resending(dynamodb.client(), between=lambda: other.transact(lambda: _count(other)))
    storage = DynamoDBStorageBackend("s", table_name=dynamodb.table_name, client=client)
    # The resend is refused (another save landed after the first send): an unknown
    # outcome, which the core settles by finding this save's token in recentWrites.
    storage.transact(lambda: _count(storage))
    assert client.resent == 1
    assert _open(dynamodb).metadata["n"] == 2


def test_recent_writes_take_an_item_of_the_transaction(dynamodb: DynamoDB) -> None:
    # config + 97 instances + instanceCounts + recentWrites + header = 101 items.
    storage = _open(dynamodb)

    def too_many() -> None:
        storage.update_configuration({"t_a": {"run": NOOP, "after": ["x"]}})
        for _ in range(97):
            storage.create_instance("t_a")

    with pytest.raises(SessionLimitError, match=r"writes 100 items.*Nothing was written"):
        storage.transact(too_many)
    assert _items(dynamodb, "s") == {}


def test_extending_the_expiry_never_shortens_it_nor_brings_a_deleted_item_back(
    dynamodb: DynamoDB,
) -> None:
    storage = _open(dynamodb, session_ttl=100)
    with storage.acquire_lock():
        storage.metadata.update({"a": 1, "b": 1, "c": 1})
        storage.save()
    header = _items(dynamodb, "s")["#"]
    epoch, expires = header["g"]["S"], int(header["items_expire"]["N"])
    client, name = dynamodb.client(), dynamodb.table_name

    class Racing:
        """The client, with another writer acting between the extension's query and its update."""

        def __getattr__(self, attribute: str) -> Any:
            return getattr(client, attribute)

        def transact_write_items(self, **request: Any) -> Any:
            client.delete_item(TableName=name, Key={"pk": {"S": "s"}, "sk": {"S": "M#b"}})
            client.update_item(
                TableName=name, Key={"pk": {"S": "s"}, "sk": {"S": "M#a"}},
                UpdateExpression="SET expires_at = :later",
                ExpressionAttributeValues={":later": {"N": str(expires + 500)}},
            )
            return client.transact_write_items(**request)

    expiry.extend(Racing(), name, "s", epoch, expires + 100, skip=set())
    items = _items(dynamodb, "s")
    assert "M#b" not in items
    assert int(items["M#a"]["expires_at"]["N"]) == expires + 500
    assert int(items["M#c"]["expires_at"]["N"]) == expires + 100


# -- time to live ------------------------------------------------------------------------


def _expiries(dynamodb: DynamoDB, uid: str) -> dict[str, int]:
    return {sk: int(item["expires_at"]["N"]) for sk, item in _items(dynamodb, uid).items()
            if "expires_at" in item}


def test_an_expired_session_reads_as_new_and_its_leftovers_are_ignored(dynamodb: DynamoDB) -> None:
    now = [1_000_000.0]
    storage = _open(dynamodb, session_ttl=100, clock=lambda: now[0], max_clock_skew=None)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": {"run": NOOP, "after": ["go"]}})
    manager.fire("go")
    header = _items(dynamodb, "s")["#"]
    # The session expires session_ttl after its last save; its items twice that
    # after their expiry was set, and the header (alone) 30 days after them.
    assert int(header["session_expires"]["N"]) == 1_000_100
    assert int(header["items_expire"]["N"]) == 1_000_200
    assert int(header["expires_at"]["N"]) == 1_000_200 + expiry.HEADER_GRACE_SECONDS
    assert set(_expiries(dynamodb, "s").values()) == {1_000_200, 1_000_200 + expiry.HEADER_GRACE_SECONDS}

    now[0] += 100  # expired: DynamoDB may not have deleted anything yet
    expired = _open(dynamodb, session_ttl=100, clock=lambda: now[0], max_clock_skew=None)
    assert expired.metadata == {} and len(expired.instances) == 0 and dict(expired.tasks) == {}
    # Listing judges expiry by the real time: this session expired in 1970.
    assert list(DynamoDBStorageBackend.session_uids(**dynamodb.options)) == []
    with expired.acquire_lock():
        expired.update_configuration({"t_b": {"run": NOOP, "after": ["x"]}})
        expired.metadata["life"] = 2
        expired.save()
    again = _open(dynamodb, clock=lambda: now[0], max_clock_skew=None)
    assert list(again.tasks) == ["t_b"] and again.metadata == {"life": 2}
    assert len(again.instances) == 0  # t_a#0 of the first life is still stored, and ignored
    assert "R#t_a#0" in _items(dynamodb, "s")


def test_item_expiry_moves_with_every_item_once_half_the_ttl_has_passed(dynamodb: DynamoDB) -> None:
    now = [1_000_000.0]
    storage = _open(dynamodb, session_ttl=100, clock=lambda: now[0], max_clock_skew=None)
    with storage.acquire_lock():
        storage.metadata.update({"a": 1, "b": 1})
        storage.save()
    now[0] += 50  # half the ttl, not more: the items' expiry stays, the session's moves
    with traffic(storage.client) as seen, storage.acquire_lock():
        storage.metadata["a"] = 2
        storage.save()
    assert seen.requests["TransactWriteItems"] == 1
    assert int(_items(dynamodb, "s")["#"]["session_expires"]["N"]) == 1_000_150
    assert {sk: e for sk, e in _expiries(dynamodb, "s").items() if sk != "#"} == {
        "M#a": 1_000_200, "M#b": 1_000_200
    }
    now[0] += 10  # more than half: every item gets the new expiry before the header does
    with traffic(storage.client) as seen, storage.acquire_lock():
        storage.metadata["a"] = 3
        storage.save()
    assert seen.transactions[0] == ["Update:M#b"]  # M#a gets it in the save itself
    header = _items(dynamodb, "s")["#"]
    assert (int(header["session_expires"]["N"]), int(header["items_expire"]["N"])) == (1_000_160, 1_000_260)
    assert {sk: e for sk, e in _expiries(dynamodb, "s").items() if sk != "#"} == {
        "M#a": 1_000_260, "M#b": 1_000_260
    }
    assert _open(dynamodb, clock=lambda: now[0], max_clock_skew=None).metadata == {"a": 3, "b": 1}


def test_a_session_saved_before_items_expire_existed_keeps_its_expiry(dynamodb: DynamoDB) -> None:
    # Earlier releases gave the header only session_expires (every item's expiry too).
    now = [1_000_000.0]
    storage = _open(dynamodb, session_ttl=100, clock=lambda: now[0], max_clock_skew=None)
    with storage.acquire_lock():
        storage.metadata.update({"a": 1, "b": 1})
        storage.save()
    dynamodb.client().update_item(
        TableName=dynamodb.table_name, Key={"pk": {"S": "s"}, "sk": {"S": "#"}},
        UpdateExpression="SET session_expires = :e REMOVE items_expire",
        ExpressionAttributeValues={":e": {"N": "1000200"}},
    )
    now[0] += 20
    with traffic(storage.client) as seen, storage.acquire_lock():
        storage.metadata["a"] = 2
        storage.save()
    assert seen.requests["TransactWriteItems"] == 1  # 200 s ahead: no extension due
    header = _items(dynamodb, "s")["#"]
    assert (int(header["session_expires"]["N"]), int(header["items_expire"]["N"])) == (1_000_120, 1_000_200)


def test_spans_report_the_requests_sent_as_round_trips(dynamodb: DynamoDB) -> None:
    storage = _open(dynamodb, "traced")
    manager = TriggerManager(storage, runners={"queue": _Queue()})
    manager.update_configuration({"t_job": {"run": NOOP, "after": ["job"], "using": "queue"}})
    with recorded_spans() as spans, traffic(storage.client) as seen:
        TriggerManager(_open(dynamodb, "traced"), runners={"queue": _Queue()}).fire("job")
    # Each load span counts its Query requests, each save span its transaction.
    assert round_trips(spans, "triggers.save") == [1]
    loads = round_trips(spans, "triggers.load")
    assert sum(loads) == seen.requests["Query"] >= 1, (loads, seen)
    assert seen.requests["TransactWriteItems"] == 1
