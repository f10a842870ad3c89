"""Optimistic saves on MongoDB: what the conformance suite cannot see from outside.

The flip of the header is refused on the server (a failed condition stops the
ordered command), two first writers race for the header's ``_id``, and without
transactions the copies of a save that never flipped stay invisible (and are
deleted by the next save after a load that met them).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import pytest
from pymongo.collection import Collection

from triggers.errors import SchemaError, StaleSessionError, StorageError
from triggers.storage import SessionChanges
from triggers_mongo import MongoStorageBackend, clients, writing


@pytest.fixture(params=["on", "off"])
def options(request: pytest.FixtureRequest, mongo_options: dict[str, Any]) -> dict[str, Any]:
    mode: str = request.param
    if mode == "on" and not clients.supports_transactions(clients.client_for(mongo_options["url"])):
        pytest.skip("this server does not run multi-document transactions")
    return {**mongo_options, "transactions": mode}


def _raw(options: dict[str, Any]) -> Collection[Any]:
    return clients.client_for(options["url"])[options["database"]][options["collection"]]


def _optimistic(storage: MongoStorageBackend, base: int | None, **metadata: Any) -> None:
    """The backend's part of an optimistic save of ``metadata`` over version ``base``."""
    new = (base or 0) + 1
    storage._save_changes(SessionChanges(storage.uid, base, new, None, metadata=metadata))


def test_of_two_first_writers_exactly_one_wins(options: dict[str, Any]) -> None:
    first, second = (MongoStorageBackend("first", **options) for _ in range(2))
    assert first.metadata == second.metadata == {}  # both loaded: no session yet
    _optimistic(first, None, who="first")
    with pytest.raises(StaleSessionError, match="another writer created the session first"):
        _optimistic(second, None, who="second")
    assert MongoStorageBackend("first", **options).metadata == {"who": "first"}


def _race(writers: list[MongoStorageBackend]) -> list[str]:
    """Both writers' first saves at once: the name of each that went through, or "refused"."""
    barrier = threading.Barrier(len(writers))
    outcomes: list[str] = []

    def save(writer: MongoStorageBackend, name: str) -> None:
        barrier.wait()
        try:
            _optimistic(writer, None, who=name)
            outcomes.append(name)
        except StaleSessionError:
            outcomes.append("refused")

    threads = [threading.Thread(target=save, args=(w, str(n))) for n, w in enumerate(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sorted(outcomes)


def test_of_two_first_writers_racing_exactly_one_wins(options: dict[str, Any]) -> None:
    for _ in range(10):
        uid = f"race-{uuid.uuid4().hex[:8]}"
        writers = [MongoStorageBackend(uid, **options) for _ in range(2)]
        for writer in writers:
            assert writer.metadata == {}
        outcomes = _race(writers)
        assert outcomes[1] == "refused", outcomes
        assert MongoStorageBackend(uid, **options).metadata == {"who": outcomes[0]}


def test_the_server_names_why_it_refused_an_optimistic_save(options: dict[str, Any]) -> None:
    MongoStorageBackend("why", **options).transact(lambda: None)  # nothing to write: no session
    writer = MongoStorageBackend("why", **options)
    writer.transact(lambda: writer.metadata.update(n=1))
    late, holder = MongoStorageBackend("why", **options), MongoStorageBackend("why", **options)
    assert late.metadata == {"n": 1}  # loaded before the lock was taken: no lease seen
    with holder.acquire_lock():
        with pytest.raises(StaleSessionError, match="a lock holder holds its lease"):
            _optimistic(late, 1, n=2)
        holder.metadata["n"] = 3
        holder.save()
    with pytest.raises(StaleSessionError, match=r"another writer saved first \(the stored version is 2\)"):
        _optimistic(late, 1, n=2)
    assert MongoStorageBackend("why", **options).metadata == {"n": 3}


def test_a_refused_save_leaves_no_copies(options: dict[str, Any]) -> None:
    writer, late = MongoStorageBackend("copies", **options), MongoStorageBackend("copies", **options)
    writer.transact(lambda: writer.metadata.update(n=1))
    assert late.metadata == {"n": 1}
    writer.transact(lambda: writer.metadata.update(n=2))
    with pytest.raises(StaleSessionError):
        _optimistic(late, 1, n=99, other="x")
    assert _raw(options).count_documents({"committed": False}) == 0


def test_without_transactions_a_version_that_never_flipped_stays_invisible(
    mongo_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer whose command ended after its copies (its server died) left version 2
    behind, uncommitted; another writer then saves version 2 of its own. (A save
    small enough to carry its records in the header writes nothing before its flip.)"""
    options = {**mongo_options, "transactions": "off"}
    monkeypatch.setattr(writing, "_PENDING_BYTES", 0)  # a save too big for the header: copies
    writer = MongoStorageBackend("never-flipped", **options)
    writer.transact(lambda: writer.metadata.update(n=1, mine="one"))
    write = writing.write

    def copies_only(collection: Any, chosen: writing.Plan, bounded: Any, transaction: Any = None) -> None:
        cut = writing.Plan(chosen.statements[: chosen.flip_at], chosen.flip_at, chosen.cleanup,
                           chosen.after)
        write(collection, cut, bounded, transaction)
        raise ConnectionError("the server went away")

    monkeypatch.setattr(writing, "write", copies_only)
    with pytest.raises(StorageError, match="went away"):
        writer.transact(lambda: writer.metadata.update(n=2, mine="dead"))
    monkeypatch.setattr(writing, "write", write)
    collection = _raw(options)
    dead = list(collection.find({"committed": False}))
    assert {(copy["version"], copy["name"]) for copy in dead} >= {(2, "n"), (2, "mine")}
    assert MongoStorageBackend("never-flipped", **options).metadata == {"n": 1, "mine": "one"}

    other = MongoStorageBackend("never-flipped", **options)
    other.transact(lambda: other.metadata.update(n=2))  # version 2 as well, by another writer
    reader = MongoStorageBackend("never-flipped", **options)
    assert reader.metadata == {"n": 2, "mine": "one"}
    assert len(reader.instances) == 0  # a full load sees the dead copies, and believes none
    reader.transact(lambda: reader.metadata.update(n=3))  # ...and deletes them
    assert collection.count_documents({"committed": False}) == 0
    assert MongoStorageBackend("never-flipped", **options).metadata == {"n": 3, "mine": "one"}


def test_without_transactions_late_statements_never_take_a_newer_version_back(
    mongo_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A save whose command pauses right after its flip: another writer saves the next
    version (carrying the paused save's records in its own command), and then the
    paused command's rewrites land."""
    options = {**mongo_options, "transactions": "off"}
    paused = MongoStorageBackend("late", **options)
    paused.transact(lambda: paused.metadata.update(x=1, y=1))
    write, rest = writing.write, []

    def until_the_flip(collection: Any, chosen: writing.Plan, bounded: Any, transaction: Any = None) -> None:
        at = chosen.flip_at + 1
        write(collection, writing.Plan(chosen.statements[:at], 0, [], chosen.after), bounded)
        rest.append((collection, writing.Plan(chosen.statements[at:], 0, [], chosen.after), bounded))

    monkeypatch.setattr(writing, "write", until_the_flip)
    paused.transact(lambda: paused.metadata.update(x=2, y=2))
    monkeypatch.setattr(writing, "write", write)
    other = MongoStorageBackend("late", **options)
    assert other.metadata == {"x": 2, "y": 2}  # believed through the header's pending records

    def no_separate_settling(*args: Any) -> None:
        raise AssertionError("the unsettled save's records ride along in the next save instead")

    monkeypatch.setattr(writing, "settle", no_separate_settling)
    other.transact(lambda: other.metadata.update(x=3))  # saves version 3, carrying y=2
    write(*rest[0])  # the paused command goes on: its tail, items and settled mark
    assert MongoStorageBackend("late", **options).metadata == {"x": 3, "y": 2}
    other.transact(lambda: other.metadata.update(x=4))
    assert MongoStorageBackend("late", **options).metadata == {"x": 4, "y": 2}


def test_sessions_of_the_older_layout_are_refused_not_hidden(mongo_options: dict[str, Any]) -> None:
    database = clients.client_for(mongo_options["url"])[mongo_options["database"]]
    database[f"{mongo_options['collection']}_items"].insert_one({"session": "k", "kind": "task"})
    with pytest.raises(SchemaError, match=r"_items'.* layout of triggers-mongo 0\.1"):
        _ = MongoStorageBackend("old", **mongo_options).metadata
    with pytest.raises(SchemaError, match=r"layout of triggers-mongo 0\.1"):
        MongoStorageBackend.check_schema(**mongo_options)
