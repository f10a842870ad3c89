"""What the mongo backend does at the server: documents, indexes, crashes, limits, errors."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.collection import Collection
from pymongo.errors import ServerSelectionTimeoutError
from pymongo.monitoring import CommandListener, CommandStartedEvent, CommandSucceededEvent

from triggers import storage_backends
from triggers.errors import (
    ConfigurationError,
    SchemaError,
    SessionLimitError,
    StaleSessionError,
    StorageError,
    hide_passwords,
)
from triggers.manager import TriggerManager
from triggers.types import InstanceStatus
from triggers_conformance.spans import recorded_spans, round_trips
from triggers_mongo import MongoStorageBackend, clients, writing
from triggers_mongo.backend import MAX_DOCUMENT_BYTES

NOOP = "triggers_conformance.tasks.noop"
HOSTILE = ["$set", "$", "a.b", "", ".", "$where.x", "a\x00b", "_id", "ünï"]
OUR_FIELDS = {
    "_id", "key", "version", "writer", "settled", "lease_token", "lease_expires",
    "expires_at", "items_expire_at", "uid", "seq", "session", "kind", "name", "committed", "active",
    "deleted", "record", "lease_session", "id",  # lease_session is {"id": <lsid>}
    "pending",
}


class Crash(Exception):
    """Stands for the process dying at a chosen point of a save."""


@pytest.fixture(params=["on", "off"])
def transactions(request: pytest.FixtureRequest, mongo_options: dict[str, Any]) -> str:
    """Each save path in turn; "on" only where the server runs transactions."""
    mode: str = request.param
    if mode == "on" and not clients.supports_transactions(clients.client_for(mongo_options["url"])):
        pytest.skip("this server does not run multi-document transactions")
    return mode


@pytest.fixture
def options(mongo_options: dict[str, Any], transactions: str) -> dict[str, Any]:
    return {**mongo_options, "transactions": transactions}


def _raw(options: dict[str, Any]) -> Collection[Any]:
    """The backend's one collection, through a client of the test's own."""
    return clients.client_for(options["url"])[options["database"]][options["collection"]]


def _current(collection: Collection[Any], uid: str) -> list[dict[str, Any]]:
    """The item documents of a session's header (not the copies of saves without transactions)."""
    header = collection.find_one({"_id": uid})
    assert header is not None
    return list(collection.find({"session": header["key"], "committed": True}))


def _field_names(document: Any) -> Iterator[str]:
    if isinstance(document, dict):
        for key, value in document.items():
            yield key
            yield from _field_names(value)
    elif isinstance(document, list):
        for value in document:
            yield from _field_names(value)


def _save_metadata(options: dict[str, Any], uid: str, **metadata: Any) -> None:
    storage = MongoStorageBackend(uid, **options)
    with storage.acquire_lock():
        storage.metadata.update(metadata)
        storage.save()
    storage.close()


def test_the_entry_point_builds_the_backend(mongo_options: dict[str, Any]) -> None:
    storage = storage_backends.get("mongo", "via-entry-point", **mongo_options)
    assert isinstance(storage, MongoStorageBackend)


def test_hostile_names_and_keys_are_data_never_operators_or_paths(
    options: dict[str, Any],
) -> None:
    uid = "$where.{'a': 1}\x00"
    payload = {key: {key: [key]} for key in HOSTILE}
    storage = MongoStorageBackend(uid, **options)
    manager = TriggerManager(storage)
    manager.update_configuration({
        f"t_{key}": {"run": NOOP, "after": [f"$go.{key}"], "withParams": payload} for key in HOSTILE
    })
    for key in HOSTILE:
        manager.fire(f"$go.{key}", payload)
    with storage.acquire_lock():
        storage.metadata.update(payload)
        storage.save()
    fresh = MongoStorageBackend(uid, **options)
    assert {key: fresh.metadata[key] for key in HOSTILE} == payload
    assert set(fresh.tasks) == {f"t_{key}" for key in HOSTILE}
    for key in HOSTILE:
        instance = fresh[f"t_{key}#0"]
        assert instance.status == InstanceStatus.FINISHED
        assert instance.kwargs[f"$go.{key}"] == payload
    documents = list(_raw(options).find())
    assert documents and set(_field_names(documents)) <= OUR_FIELDS


def test_documents_are_settled_to_one_copy_per_item(options: dict[str, Any]) -> None:
    storage = MongoStorageBackend("settled", **options)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": {"run": NOOP, "after": ["go"], "andEvery": "go"}})
    for n in range(3):
        manager.fire("go", {"n": n})
    with storage.acquire_lock():
        storage.metadata["gone"] = 1
        storage.save()
        del storage.metadata["gone"]
        storage.save()
    collection = _raw(options)
    header = collection.find_one({"_id": "settled"})
    assert header is not None and header["settled"] == header["version"]
    found = _current(collection, "settled")
    names = [(item["kind"], item["name"]) for item in found]
    assert len(names) == len(set(names))  # one current document per item
    assert all(item["committed"] for item in found)
    gone = [item for item in found if item["name"] == "gone"]
    assert [(item["deleted"], item["active"]) for item in gone] == [(True, False)]  # a tombstone
    # Replaced in place, in a transaction; or, without, the copies deleted once settled.
    assert list(collection.find({"session": header["key"], "committed": False})) == []
    assert len(MongoStorageBackend("settled", **options).instances) == 3


def _crash_at(monkeypatch: pytest.MonkeyPatch, statements: int | None) -> None:
    """Make the next save send only its first ``statements`` (to the flip: the copies;
    ``None``: all of them, then no commit) and then die."""
    write = writing.write

    def die(collection: Any, chosen: writing.Plan, bounded: Any, transaction: Any = None) -> None:
        if statements is None:
            assert transaction is not None
            monkeypatch.setattr(transaction.session, "commit_transaction", _raise_crash)
            write(collection, chosen, bounded, transaction)
        else:
            cut = writing.Plan(chosen.statements[: chosen.flip_at + statements], chosen.flip_at,
                               chosen.cleanup, chosen.after)
            write(collection, cut, bounded, transaction)
        raise Crash("the process died in the middle of its save")

    monkeypatch.setattr(writing, "write", die)


def _raise_crash(*args: Any, **kwargs: Any) -> None:
    raise Crash("the process died before committing")


@pytest.fixture(params=["header", "copies"])
def carrier(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Where a save without transactions keeps its records until settled: the header's
    ``pending``, or (a save too big for the header) copies."""
    if request.param == "copies":
        monkeypatch.setattr(writing, "_PENDING_BYTES", 0)
    return str(request.param)


def test_a_crash_before_the_header_flip_leaves_the_old_state_loadable(
    options: dict[str, Any], carrier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    _save_metadata(options, "crash", step=1, keep="yes")
    storage = MongoStorageBackend("crash", lease_ttl=0.5, **options)
    with storage.acquire_lock():
        storage.metadata["step"] = 2
        storage.metadata["new"] = [1, 2]
        del storage.metadata["keep"]
        # Without transactions: what precedes the flip is written (the copies, if any),
        # the flip never is. With: the whole save was sent in the transaction, which is
        # never committed.
        write = writing.write
        _crash_at(monkeypatch, 0 if options["transactions"] == "off" else None)
        with pytest.raises(StorageError) as info:
            storage.save()
        assert isinstance(info.value.__cause__, Crash)
    monkeypatch.setattr(writing, "write", write)
    collection = _raw(options)
    copies = 3 if options["transactions"] == "off" and carrier == "copies" else 0
    assert collection.count_documents({"committed": False}) == copies  # left behind...
    reader = MongoStorageBackend("crash", **options)
    assert reader.metadata == {"step": 1, "keep": "yes"}  # ...and believed by no reader
    # The next holder saves over them; the abandoned documents never come back.
    _save_metadata(options, "crash", other=True)
    _save_metadata(options, "crash", later=True)
    assert MongoStorageBackend("crash", **options).metadata == {
        "step": 1, "keep": "yes", "other": True, "later": True
    }


def test_a_crash_after_the_flip_is_settled_by_the_next_holder(
    mongo_options: dict[str, Any], carrier: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without transactions (with one, the flip and the settling commit together); the
    # command stops right after the flip, as if the server died inside it.
    options = {**mongo_options, "transactions": "off"}
    storage = MongoStorageBackend("flipped", **options)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": {"run": NOOP, "after": ["go"]}, "t_b": {"run": NOOP, "after": ["x", "y"]}})
    manager.fire("go")
    with storage.acquire_lock():
        storage.metadata["gone"] = True
        storage.save()
    with storage.acquire_lock():
        storage["t_a#0"].metadata["touched"] = True
        del storage.metadata["gone"]
        write = writing.write
        _crash_at(monkeypatch, 1)
        with pytest.raises(StorageError):
            storage.save()
        monkeypatch.setattr(writing, "write", write)
    collection = _raw(options)
    header = collection.find_one({"_id": "flipped"})
    assert header is not None and header["settled"] == header["version"] - 1
    # Readers see the committed save, whole, though it was never settled.
    reader = MongoStorageBackend("flipped", **options)
    assert reader["t_a#0"].metadata["touched"] is True
    assert "gone" not in reader.metadata
    assert set(reader.tasks) == {"t_a", "t_b"}
    TriggerManager(reader).fire("x")  # the next writer settles it first
    header = collection.find_one({"_id": "flipped"})
    assert header is not None and header["settled"] == header["version"]
    final = MongoStorageBackend("flipped", **options)
    assert final["t_a#0"].metadata["touched"] is True and "gone" not in final.metadata
    assert len(final.instances) == 2
    names = [(item["kind"], item["name"]) for item in _current(collection, "flipped")]
    assert len(names) == len(set(names))


def test_a_stale_holder_is_refused_and_its_documents_discarded(options: dict[str, Any]) -> None:
    _save_metadata(options, "stale", owner="nobody")
    frozen = time.time()  # the stale holder's clock stops: it never sees its lease end
    stale = MongoStorageBackend("stale", lease_ttl=1, clock=lambda: frozen, **options)
    newcomer = MongoStorageBackend("stale", lease_ttl=5, **options)
    with stale.acquire_lock():
        stale.metadata["owner"] = "stale"
        with newcomer.acquire_lock():  # the stale lease ends on the server's clock
            newcomer.metadata["owner"] = "newcomer"
            newcomer.save()
        with pytest.raises(StaleSessionError, match="taken over"):
            stale.save()
    assert MongoStorageBackend("stale", **options).metadata["owner"] == "newcomer"
    assert _raw(options).count_documents({"committed": False}) == 0  # copies: none left


def test_a_session_bigger_than_one_document_works(options: dict[str, Any]) -> None:
    storage = MongoStorageBackend("big", **options)
    pad = "p" * 600_000
    with storage.acquire_lock():
        storage.update_configuration({"t_big": {"run": NOOP, "after": ["never"]}})
        for _ in range(40):  # 40 x 600 kB: 24 MB in all
            storage.create_instance("t_big", metadata={"pad": pad})
        storage.save()
    fresh = MongoStorageBackend("big", **options)
    assert len(fresh.instances) == 40
    assert sum(len(i.metadata["pad"]) for i in fresh.instances.values()) > MAX_DOCUMENT_BYTES


def test_an_item_over_16_mb_is_refused_by_name_with_nothing_written(
    options: dict[str, Any],
) -> None:
    _save_metadata(options, "huge", small=1)
    storage = MongoStorageBackend("huge", **options)
    collection = _raw(options)

    def stored() -> tuple[list[Any], int]:
        headers = collection.find({"_id": "huge"}, {"lease_token": 0, "lease_expires": 0})
        return list(headers), collection.count_documents({})

    before = stored()
    with storage.acquire_lock():
        storage.update_configuration({"t_a": {"run": NOOP, "after": ["never"]}})
        storage.create_instance("t_a", metadata={"pad": "p" * MAX_DOCUMENT_BYTES})
        with pytest.raises(SessionLimitError, match="t_a#0"):
            storage.save()
        storage.invalidate_cache()
        storage.metadata["huge"] = "h" * MAX_DOCUMENT_BYTES
        storage.metadata["small"] = 2
        with pytest.raises(SessionLimitError, match=r"metadata 'huge'.*Nothing was written"):
            storage.save()
    assert stored() == before
    assert MongoStorageBackend("huge", **options).metadata == {"small": 1}


def test_session_ttl_creates_the_indexes_and_dates_every_document(
    mongo_options: dict[str, Any],
) -> None:
    with pytest.raises(SchemaError, match="lacks the indexes"):
        MongoStorageBackend.check_schema(**mongo_options, session_ttl=60)  # before any use
    now = [datetime(2026, 1, 1, tzinfo=UTC).timestamp()]
    options = {**mongo_options, "session_ttl": 3600}
    storage = MongoStorageBackend("ttl", clock=lambda: now[0], **options)
    manager = TriggerManager(storage)
    manager.update_configuration({"t_a": {"run": NOOP, "after": ["go"], "andEvery": "go"}})
    manager.fire("go")
    collection = _raw(options)
    indexes = {index["name"]: index for index in collection.list_indexes()}
    assert indexes["expires_at"]["expireAfterSeconds"] == 0
    lines = MongoStorageBackend.check_schema(**options)
    assert any("index expires_at" in line for line in lines)

    def expiries() -> tuple[datetime, datetime]:
        header = collection.find_one({"_id": "ttl"})
        assert header is not None
        dates = [item["expires_at"] for item in _current(collection, "ttl")]
        return header["expires_at"], min(dates)

    start = datetime.fromtimestamp(now[0], UTC).replace(tzinfo=None)
    header_expiry, items_expiry = expiries()
    assert header_expiry == start + timedelta(hours=1)
    assert items_expiry == start + timedelta(hours=2)  # items outlive their header
    for hours in (0.5, 1.5, 3):  # every save moves the header; items follow when needed
        now[0] += hours * 3600
        manager.fire("go")
        header_expiry, items_expiry = expiries()
        assert header_expiry == datetime.fromtimestamp(now[0] + 3600, UTC).replace(tzinfo=None)
        assert items_expiry >= header_expiry


def test_a_fire_reads_and_writes_the_same_whatever_the_history(
    mongo_options: dict[str, Any], transactions: str
) -> None:
    listener = _Traffic()
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_options["url"], event_listeners=[listener])
    options = {**mongo_options, "url": None, "client": client, "transactions": transactions}
    for uid, history in (("small", 10), ("big", 1000)):
        storage = MongoStorageBackend(uid, **options)
        manager = TriggerManager(storage)
        manager.update_configuration({
            "t_history": {"run": NOOP, "after": ["start"]},
            "t_a": {"run": NOOP, "after": ["start", "go"]},
        })
        manager.fire("start")
        with storage.acquire_lock():
            for n in range(history):
                storage.create_instance(
                    "t_history", status=InstanceStatus.FINISHED, kwargs={"start": {"n": n}}
                )
            storage.save()
    seen = {}
    for uid in ("small", "big"):
        listener.clear()
        TriggerManager(MongoStorageBackend(uid, **options)).fire("go")
        seen[uid] = (listener.commands(), listener.returned)
    assert seen["big"] == seen["small"]  # nothing is per finished instance
    assert seen["big"][1] <= 30  # headers and the few active items of each load
    # Every query goes through an index to a few documents.
    narrow = [{"uid", "active"}, {"session", "kind", "name"}, {"_id"}]
    assert listener.item_filters
    for query in listener.item_filters:
        assert any(fields <= set(query) for fields in narrow), query
    client.close()


def test_an_unreachable_server_is_a_clear_storage_error() -> None:
    url = "mongodb://someone:secret@127.0.0.1:9/?serverSelectionTimeoutMS=300"
    storage = MongoStorageBackend("s", url=url)
    with pytest.raises(StorageError, match=r"could not load session 's' on MongoDB .*\*\*\*@127") as info:
        storage.metadata  # noqa: B018 - the load is the point
    assert "secret" not in str(info.value)
    assert isinstance(info.value.__cause__, ServerSelectionTimeoutError)


def test_administration_creates_checks_and_lists(mongo_options: dict[str, Any]) -> None:
    created = MongoStorageBackend.create_schema(**mongo_options)
    assert any("uid_active" in line for line in created)
    assert MongoStorageBackend.check_schema(**mongo_options)
    _save_metadata(mongo_options, "listed", k=1)
    locked_only = MongoStorageBackend("never saved", **mongo_options)
    with locked_only.acquire_lock():
        pass
    assert list(MongoStorageBackend.session_uids(**mongo_options)) == ["listed"]


def test_the_collection_prefix_separates_applications(mongo_options: dict[str, Any]) -> None:
    other = {**mongo_options, "collection": mongo_options["collection"] + "_other"}
    _save_metadata(mongo_options, "same", app=1)
    _save_metadata(other, "same", app=2)
    assert MongoStorageBackend("same", **mongo_options).metadata == {"app": 1}
    assert MongoStorageBackend("same", **other).metadata == {"app": 2}


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({}, "exactly one of url= .* or client="),
        ({"url": "mongodb://x", "client": object()}, "exactly one of"),
        ({"client": "mongodb://x"}, "client= must be a pymongo MongoClient"),
        ({"url": "http://x"}, "url='http://x' is not usable"),
        ({"url": "mongodb://u:pw@x:99999"}, r"url='mongodb://u:\*\*\*@x:99999' is not usable"),
        ({"url": "mongodb://x", "collection": "a.b"}, "collection='a.b'"),
        ({"url": "mongodb://x", "database": "a b/c"}, "database='a b/c'"),
        ({"url": "mongodb://x", "transactions": True}, "transactions= must be 'auto', 'on' or 'off'"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(
    options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        MongoStorageBackend("s", **options)


def test_session_objects_of_one_configuration_share_one_store(
    mongo_options: dict[str, Any],
) -> None:
    first = MongoStorageBackend("a", **mongo_options)
    assert MongoStorageBackend("b", lease_ttl=5, **mongo_options).store is first.store
    other = MongoStorageBackend("c", **{**mongo_options, "transactions": "off"})
    assert other.store is not first.store and other.client is first.client  # one per URL


def test_administration_refuses_the_old_name_of_session_ttl() -> None:
    for administer in (MongoStorageBackend.create_schema, MongoStorageBackend.check_schema):
        with pytest.raises(ConfigurationError, match="ttl is now named session_ttl"):
            administer(url="mongodb://x", ttl=60)


class _Traffic(CommandListener):
    """Commands sent and documents returned, as the driver saw them."""

    def __init__(self) -> None:
        self.clear()

    def clear(self) -> None:
        self.sent: list[str] = []
        self.returned = 0
        self.item_filters: list[dict[str, Any]] = []

    def commands(self) -> list[str]:
        return sorted(self.sent)

    def started(self, event: CommandStartedEvent) -> None:
        name = event.command_name
        if name not in ("hello", "isMaster", "ping", "endSessions"):
            self.sent.append(name)
        command = event.command
        if name == "find":
            self.item_filters.append(command["filter"])
        for statement in [*command.get("updates", []), *command.get("deletes", [])]:
            self.item_filters.append(statement["q"])
        if name == "aggregate":
            self.item_filters.extend(_matches(command["pipeline"]))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        cursor = event.reply.get("cursor")
        if isinstance(cursor, dict):
            self.returned += len(cursor.get("firstBatch", cursor.get("nextBatch", [])))

    def failed(self, event: Any) -> None:
        pass


def _matches(pipeline: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The ``$match`` filters of a pipeline, those of its ``$unionWith`` parts included."""
    for stage in pipeline:
        if "$match" in stage:
            yield stage["$match"]
        if "$unionWith" in stage:
            yield from _matches(stage["$unionWith"]["pipeline"])


def test_records_are_json_text(mongo_options: dict[str, Any]) -> None:
    _save_metadata(mongo_options, "json", when=datetime(2026, 1, 1, tzinfo=UTC), d={"$x": 1})
    item = _raw(mongo_options).find_one({"kind": "metadata", "name": "d"})
    assert item is not None and json.loads(item["record"]) == {"$$x": 1}
    assert MongoStorageBackend("json", **mongo_options).metadata["d"] == {"$x": 1}


def test_a_forked_child_gets_its_own_client(mongo_url: str) -> None:
    parent = clients.client_for(mongo_url)
    assert clients.client_for(mongo_url) is parent  # shared within a process
    child = os.fork()
    if child == 0:  # pragma: no cover - runs in the child
        os._exit(0 if clients.client_for(mongo_url) is not parent else 1)
    _, status = os.waitpid(child, 0)
    assert os.waitstatus_to_exitcode(status) == 0


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        ("mongodb://app:s3cret@db1,db2/x?replicaSet=rs0", "mongodb://app:***@db1,db2/x?replicaSet=rs0"),
        ("mongodb+srv://app:p%40ss@cluster.example.net/", "mongodb+srv://app:***@cluster.example.net/"),
        ("mongodb://db:27017/?w=majority", "mongodb://db:27017/?w=majority"),
    ],
)
def test_passwords_never_appear_in_messages(url: str, shown: str) -> None:
    assert hide_passwords(url) == shown


def test_a_uid_reused_after_its_header_expired_never_sees_the_old_items(
    mongo_options: dict[str, Any],
) -> None:
    options = {**mongo_options, "session_ttl": 3600}
    _save_metadata(options, "reused", old=True)
    collection = _raw(options)
    lingering = collection.count_documents({"uid": "reused"})
    collection.delete_one({"_id": "reused"})  # what the TTL monitor does first
    assert MongoStorageBackend("reused", **options).metadata == {}
    _save_metadata(options, "reused", new=True)
    assert MongoStorageBackend("reused", **options).metadata["new"] is True
    assert "old" not in MongoStorageBackend("reused", **options).metadata
    # The old items wait for their own expiry; loads read them (by uid) and ignore them.
    assert collection.count_documents({"uid": "reused"}) > lingering


def test_spans_report_the_commands_sent_as_round_trips(mongo_options: dict[str, Any]) -> None:
    _save_metadata(mongo_options, "traced", step=1)
    storage = MongoStorageBackend("traced", **mongo_options)
    with recorded_spans() as spans:
        storage.transact(lambda: storage.metadata.update(step=2))
    # A change through transact(): one find to load, one update to save (no transaction).
    reported = (round_trips(spans, "triggers.load"), round_trips(spans, "triggers.save"))
    assert reported == ([1], [1]), reported
