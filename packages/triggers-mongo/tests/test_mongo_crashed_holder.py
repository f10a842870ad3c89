"""A lock holder that dies inside its save transaction, a server that blocks, and durability.

Found by the reliability suite (reliability/RESULTS.md, rows 5 and 6): a
worker SIGKILLed in the middle of a save left its transaction open on
SecantusDB, whose uncommitted write of the header made every later lease
write wait for ever; and acknowledged saves were lost when the server was
killed, because they were not journaled.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.client_session import ClientSession
from pymongo.monitoring import (
    CommandFailedEvent,
    CommandListener,
    CommandStartedEvent,
    CommandSucceededEvent,
)

from triggers.errors import LockTimeoutError
from triggers_conformance.processes import new_event, start_child
from triggers_mongo import MongoStorageBackend, clients

LIVENESS = 120.0
"""Seconds after which a call that never returns fails the test (it would hang for ever)."""


@pytest.fixture
def options(mongo_options: dict[str, Any]) -> dict[str, Any]:
    if not clients.supports_transactions(clients.client_for(mongo_options["url"])):
        pytest.skip("this server does not run multi-document transactions")
    return {**mongo_options, "transactions": "on"}


def _returns(call: Callable[[], Any]) -> Any:
    """``call()``, run in a thread so that a call that never returns fails instead of hanging."""
    outcome: list[tuple[bool, Any]] = []

    def run() -> None:
        try:
            outcome.append((True, call()))
        except BaseException as error:  # handed to the test thread
            outcome.append((False, error))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(LIVENESS)
    assert outcome, "the call never returned: the backend waited on the server without a bound"
    ok, value = outcome[0]
    if not ok:
        raise value
    return value


def _save_metadata(storage: MongoStorageBackend, **metadata: Any) -> None:
    with storage.acquire_lock():
        storage.metadata.update(metadata)
        storage.save()


def _die_inside_the_transaction(options: dict[str, Any], uid: str, inside: Any) -> None:
    """Hold the lock and stop for good once the save's statements ran, before its commit."""

    def stall(*args: Any, **kwargs: Any) -> None:
        inside.set()
        time.sleep(600)

    ClientSession.commit_transaction = stall  # type: ignore[method-assign]  # (in this child only)
    storage = MongoStorageBackend(uid, lease_ttl=1, **options)
    with storage.acquire_lock():
        storage.metadata["step"] = 2
        storage.save()


def _killed_inside_a_transaction(options: dict[str, Any], uid: str) -> None:
    """Save step 1, then leave a holder SIGKILLed with its save of step 2 uncommitted."""
    _save_metadata(MongoStorageBackend(uid, **options), step=1)
    inside = new_event()
    child = start_child(_die_inside_the_transaction, options, uid, inside)
    child.wait_for(inside, timeout=60)
    assert child.process.pid is not None
    os.kill(child.process.pid, signal.SIGKILL)
    child.process.join(10)
    header = _collection(options).find_one({"_id": uid})
    assert header is not None and header["lease_session"], "the lease names the holder's session"
    assert MongoStorageBackend(uid, **options).metadata == {"step": 1}  # the dead save is invisible


def _collection(options: dict[str, Any]) -> Any:
    return clients.client_for(options["url"])[options["database"]][options["collection"]]


def test_a_holder_killed_inside_its_save_transaction_does_not_block_the_session(
    options: dict[str, Any],
) -> None:
    uid = "killed-in-transaction"
    _killed_inside_a_transaction(options, uid)
    successor = MongoStorageBackend(uid, lease_ttl=5, lock_timeout=30, **options)
    _returns(lambda: _save_metadata(successor, step=3))
    assert MongoStorageBackend(uid, **options).metadata == {"step": 3}
    _returns(lambda: _save_metadata(MongoStorageBackend(uid, **options), step=4))
    assert MongoStorageBackend(uid, **options).metadata == {"step": 4}


def test_an_optimistic_write_ends_a_dead_holders_transaction(options: dict[str, Any]) -> None:
    """No lease is taken, so the writer itself ends the expired holder's session.

    Without that, its transaction would conflict with every write of the
    header until the server dropped it (60 s on SecantusDB, once another
    transaction command arrives; ``transactionLifetimeLimitSeconds`` on mongod),
    longer than the writer's 30 s wait.
    """
    uid = "killed-before-an-optimistic-write"
    _killed_inside_a_transaction(options, uid)
    writer = MongoStorageBackend(uid, lock_timeout=30, **options)
    _returns(lambda: writer.transact(lambda: writer.metadata.update(step=3)))
    assert MongoStorageBackend(uid, **options).metadata == {"step": 3}
    header = _collection(options).find_one({"_id": uid})
    assert header is not None and header["lease_session"] is None  # ended once, not again


def test_the_lock_wait_is_bounded_when_the_server_blocks_the_header(
    options: dict[str, Any],
) -> None:
    """An open transaction the lease does not name (another program's) holds the header."""
    uid = "blocked-header"
    _save_metadata(MongoStorageBackend(uid, **options), step=1)
    client: MongoClient[dict[str, Any]] = MongoClient(options["url"])
    sessions = client[options["database"]][options["collection"]]
    try:
        with client.start_session() as other:
            other.start_transaction()
            sessions.update_one({"_id": uid}, {"$set": {"other": 1}}, session=other)
            waiter = MongoStorageBackend(uid, lease_ttl=5, lock_timeout=1, **options)
            with pytest.raises(LockTimeoutError, match=r"session 'blocked-header'.*open transaction"):
                _returns(lambda: _save_metadata(waiter, step=2))
            other.abort_transaction()
    finally:
        client.close()
    # Once the transaction is gone the session works (the timed-out lease write may
    # still have landed in the server: its lease then runs out like a dead holder's).
    _returns(lambda: _save_metadata(MongoStorageBackend(uid, lock_timeout=30, **options), step=3))
    assert MongoStorageBackend(uid, **options).metadata == {"step": 3}


class _WriteConcerns(CommandListener):
    def __init__(self) -> None:
        self.seen: dict[str, list[Any]] = {}

    def started(self, event: CommandStartedEvent) -> None:
        if event.command_name in {"update", "delete", "commitTransaction"}:
            self.seen.setdefault(event.command_name, []).append(event.command.get("writeConcern"))

    def succeeded(self, event: CommandSucceededEvent) -> None:
        pass

    def failed(self, event: CommandFailedEvent) -> None:
        pass


@pytest.mark.parametrize("transactions", ["on", "off"])
def test_saves_and_leases_are_journaled_unless_the_client_says_otherwise(
    mongo_options: dict[str, Any], transactions: str
) -> None:
    listener = _WriteConcerns()
    client: MongoClient[dict[str, Any]] = MongoClient(mongo_options["url"], event_listeners=[listener])
    options = {**mongo_options, "transactions": transactions}
    del options["url"]
    try:
        if transactions == "on" and not clients.supports_transactions(client):
            pytest.skip("this server does not run multi-document transactions")
        _save_metadata(MongoStorageBackend("journaled", client=client, **options), step=1)
        storage = MongoStorageBackend("journaled", client=client, **options)
        storage.transact(lambda: storage.metadata.update(step=2))  # an optimistic save too
        assert listener.seen["update"]
        outside = listener.seen["update"]
        if transactions == "on":
            # The lock holder's save commits a transaction; the optimistic one has none.
            assert listener.seen["commitTransaction"] == [{"j": True}]
            # Inside a transaction only the commit carries a write concern.
            outside = [concern for concern in outside if concern is not None]
        assert outside and all(concern == {"j": True} for concern in outside)
    finally:
        client.close()

    listener = _WriteConcerns()
    url = mongo_options["url"] + ("&" if "?" in mongo_options["url"] else "/?") + "journal=false&w=1"
    client = MongoClient(url, event_listeners=[listener])
    try:
        _save_metadata(MongoStorageBackend("journaled", client=client, **options), step=2)
        concerns = [c for cs in listener.seen.values() for c in cs if c is not None]
        assert concerns and all(concern == {"w": 1, "j": False} for concern in concerns)
    finally:
        client.close()


def test_an_attempt_that_spent_half_its_lease_waiting_takes_a_fresh_one(
    mongo_options: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a restart pymongo waits for the server inside the first attempt; the
    lease's clock started before that wait, so taking it would leave the holder a
    lease that runs out before its save (LeaseExpiredError in the reliability suite)."""
    now = [1_000_000.0]
    storage = MongoStorageBackend("slow-attempt", clock=lambda: now[0], **mongo_options)
    aggregate = storage.collection.aggregate
    waits = [5.0]  # the first read of the header's lease "waits for the server" 5 s

    def slow_aggregate(*args: Any, **kwargs: Any) -> Any:
        if waits:
            now[0] += waits.pop()
        return aggregate(*args, **kwargs)

    monkeypatch.setattr(storage.collection, "aggregate", slow_aggregate)
    with storage.acquire_lock(ttl=4) as lease:
        assert not waits and lease.acquired_at == 1_000_005.0  # the second, fresh lease
        storage.metadata["step"] = 1
        storage.save()
    assert MongoStorageBackend("slow-attempt", **mongo_options).metadata == {"step": 1}
