"""A cache evicting any one of a session's keys: never old state back, never a wedged session.

Each test builds a session with history (a head, recent segments, index
documents), deletes one kind of key as a cache under memory pressure would,
and checks what the README promises: a session whose head is gone loads
empty and takes saves again, without old state ever coming back; a session
that lost part of its finished history says so, naming the uid, while fires
go on; a lock key lost under its holder lets another holder in and refuses
the first holder's save.
"""

from __future__ import annotations

import pytest
from sessions import RECENT_LIMIT, Sessions, page_numbers

from triggers.errors import StaleSessionError
from triggers.manager import TriggerManager
from triggers_cache import SessionLostError
from triggers_cache.store_chain import ChainStore

FIRES = RECENT_LIMIT + 4
"""Enough for an index document and a few recent segments."""


def _fire(sessions: Sessions, *pages: str) -> None:
    manager = TriggerManager(sessions.open())
    for page in pages:
        manager.fire("page", {"n": page})


def _started_again(sessions: Sessions) -> None:
    """The session loads empty; configuring and firing it again works, and shows only the new state."""
    fresh = sessions.open()
    assert fresh.metadata == {} and len(fresh.instances) == 0
    sessions.build(fires=3)
    again = sessions.open()
    assert page_numbers(again) == ["fire 0", "fire 1", "fire 2"]  # nothing of the old incarnation
    assert again.instance_count("t_page") == 3


def test_a_lost_head_loads_empty_and_old_state_never_comes_back(fenced_alias: str) -> None:
    sessions = Sessions(fenced_alias)
    storage = sessions.build(fires=FIRES)
    storage.store.delete_raw(sessions.head_key())
    _started_again(sessions)
    _fire(sessions, "later")
    assert page_numbers(sessions.open())[-1] == "later"


def test_a_lost_head_pointer_loads_empty_and_old_heads_are_never_stepped_onto(
    fenced_alias: str,
) -> None:
    """The issue's first case: the head key lost, older versions kept, three saves, then a load."""
    sessions = Sessions(fenced_alias)
    storage = sessions.build(fires=4)
    if not isinstance(storage.store, ChainStore):
        pytest.skip("only chained caches keep a pointer apart from the head")
    storage.store.delete_raw(storage.keys.head)  # the heads it pointed at stay
    _started_again(sessions)


def test_a_session_lost_after_its_first_saves_takes_new_saves(fenced_alias: str) -> None:
    """The issue's second case: the first versions kept, the head lost: no save refused for ever."""
    sessions = Sessions(fenced_alias)
    storage = sessions.build()  # two saves: configuration, "start"
    storage.store.delete_raw(storage.keys.head)
    _started_again(sessions)


@pytest.mark.parametrize("kind", ["segment", "index"])
def test_lost_history_is_reported_on_full_loads_while_fires_go_on(fenced_alias: str, kind: str) -> None:
    sessions = Sessions(fenced_alias, "evicted")
    storage = sessions.build(fires=FIRES)
    head = sessions.head()
    token = head.recent[0] if kind == "segment" else head.index
    assert token is not None
    storage.store.delete_raw(storage.keys.document(token))
    with pytest.raises(SessionLostError, match=r"session 'evicted': .* no longer in the cache"):
        _ = sessions.open().instances
    _fire(sessions, "after the loss")  # fires read only the head
    fresh = sessions.open()
    assert fresh.instance_count("t_page") == FIRES + 1
    assert fresh.get_unresolved_instances()[0].name == "t_wait#0"
    with pytest.raises(SessionLostError):
        _ = fresh.instances


def test_a_lock_key_lost_under_its_holder_lets_another_in_and_refuses_the_first(
    fenced_alias: str,
) -> None:
    sessions = Sessions(fenced_alias)
    sessions.build(fires=1)
    holder, other = sessions.open(), sessions.open()
    with holder.acquire_lock():
        holder.metadata["by"] = "first holder"
        holder.store.delete_raw(holder.keys.lock)
        with other.acquire_lock():
            other.metadata["by"] = "second holder"
            other.save()
        with pytest.raises(StaleSessionError):
            holder.save()
    assert sessions.open().metadata["by"] == "second holder"
    _fire(sessions, "after")
    assert page_numbers(sessions.open())[-1] == "after"
