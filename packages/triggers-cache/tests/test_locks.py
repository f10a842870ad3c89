"""Leases on every cache: a release or renewal never touches a lease another holder took over.

And on Redis and memcached, a writer that loaded before a lock was taken
never writes while that lock is held (memcached has no script to check the
lock and write in one step: the holder's bump of the head stops the writer).
"""

from __future__ import annotations

import threading
import time

import pytest
from sessions import Sessions

from triggers.errors import ContentionError
from triggers.locking import Lease


def _token(raw: object) -> str:
    if isinstance(raw, bytes):
        return raw.decode()
    return str(raw)


def test_a_release_after_a_takeover_leaves_the_new_holders_lease(fenced_alias: str) -> None:
    sessions = Sessions(fenced_alias)
    store, uid, lock = sessions.store, sessions.uid, sessions.keys.lock
    late = Lease.new(uid, 1.0, time.time)
    assert store.take_lease(uid, late)
    deadline = time.monotonic() + 10
    now = Lease.new(uid, 30.0, time.time)
    while not store.take_lease(uid, now):  # once the cache ended the first lease (1-2 s)
        assert time.monotonic() < deadline, "the first lease never ended"
        time.sleep(0.2)
    assert not store.renew_lease(uid, late)
    store.release_lease(uid, late)
    assert _token(store.get(lock)) == now.token
    assert not store.take_lease(uid, Lease.new(uid, 30.0, time.time))
    assert store.renew_lease(uid, now)
    store.release_lease(uid, now)
    assert store.get(lock) is None


def test_an_expired_lock_is_taken_by_one_contender_only(fenced_alias: str) -> None:
    sessions = Sessions(fenced_alias)
    expiring = Lease.new(sessions.uid, 1.0, time.time)
    assert sessions.store.take_lease(sessions.uid, expiring)
    time.sleep(2.2)  # past the lease on every cache (memcached and the database count whole seconds)
    contenders = [Lease.new(sessions.uid, 30.0, time.time) for _ in range(3)]
    won = [sessions.open().store.take_lease(sessions.uid, lease) for lease in contenders]
    assert won == [True, False, False]


def test_a_writer_that_loaded_before_a_lock_was_taken_never_writes_under_it(
    server_alias: str,
) -> None:
    sessions = Sessions(server_alias)
    sessions.build(fires=1)
    writer, holder = sessions.open(), sessions.open()
    held, leave = threading.Event(), threading.Event()

    def hold() -> None:
        with holder.acquire_lock():
            holder.metadata["holder"] = "was here"
            held.set()
            leave.wait(30)
            holder.save()

    thread = threading.Thread(target=hold)

    def change() -> None:
        writer.metadata["writer"] = writer.metadata.get("writer", 0) + 1
        if not thread.is_alive() and not held.is_set():
            thread.start()  # the lock is taken after this load, before this write
            assert held.wait(30)

    try:
        with pytest.raises(ContentionError, match=sessions.uid):
            writer.transact(change, timeout=0.5)
    finally:
        leave.set()
        thread.join(30)
    stored = sessions.open().metadata
    assert stored["holder"] == "was here"
    assert "writer" not in stored
    writer.transact(change)  # the lock is gone: it goes through
    assert sessions.open().metadata["writer"] == 1
