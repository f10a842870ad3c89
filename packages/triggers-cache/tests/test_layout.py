"""The layout on real caches: a fire writes the same whatever the history; history reads back whole."""

from __future__ import annotations

from typing import Any

import pytest
from sessions import Sessions, page_numbers

from triggers.manager import TriggerManager
from triggers_cache import CacheStorageBackend
from triggers_cache.layout import RECENT_LIMIT, Loaded, Plan


class Written:
    """Records every plan a storage's store writes (the head's text and the history documents)."""

    def __init__(self, storage: CacheStorageBackend) -> None:
        self.plans: list[Plan] = []
        write = storage.store.write

        def spy(base: Loaded, plan: Plan, lease: Any) -> Loaded:
            self.plans.append(plan)
            return write(base, plan, lease)

        storage.store.write = spy  # type: ignore[method-assign]

    @property
    def bytes(self) -> int:
        texts = [plan.text for plan in self.plans]
        texts += [doc for plan in self.plans for doc in plan.documents.values()]
        return sum(len(text.encode("utf-8")) for text in texts)


def _bytes_per_fire(sessions: Sessions, finished: int) -> tuple[int, int]:
    storage = sessions.build(finished=finished, fires=1)
    written = Written(storage)
    manager = TriggerManager(storage)
    for n in range(3):
        manager.fire("page", {"n": f"counted {n}"})
    return written.bytes, len(written.plans)


@pytest.mark.parametrize("alias", ["redis", "memcached", "database"])
def test_a_fire_writes_the_same_bytes_whatever_the_length_of_the_history(
    alias: str, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue({"redis": "redis_server", "memcached": "memcached_server",
                             "database": "postgresql_server"}[alias])
    small, small_saves = _bytes_per_fire(Sessions(alias, "small"), finished=10)
    large, large_saves = _bytes_per_fire(Sessions(alias, "large"), finished=2000)
    assert small_saves == large_saves == 6  # two saves per eager fire
    # The same documents (both histories fit one segment), but for the digits
    # of the instance numbers (#13 or #2003).
    assert abs(large - small) <= 6 * 8, (small, large)


@pytest.mark.usefixtures("memcached_server")
def test_memcached_keeps_sessions_larger_than_one_item() -> None:
    sessions = Sessions("memcached")
    storage = sessions.build(finished=10_000, fires=2)  # about 1.6 MB of history
    assert len(sessions.head().recent) >= 4  # in several items
    numbers = page_numbers(sessions.open())
    assert sorted(map(str, numbers)) == sorted([*map(str, range(10_000)), "fire 0", "fire 1"])
    assert storage.instance_count("t_page") == 10_002


def test_segments_fold_into_index_documents_and_read_back_in_order(
    fenced_alias: str,
) -> None:
    sessions = Sessions(fenced_alias)
    fires = RECENT_LIMIT * 2 + 3
    sessions.build(fires=fires)
    head = sessions.head()
    assert head.index is not None  # 35 segments: two index documents and 3 recent
    assert len(head.recent) == 3
    assert page_numbers(sessions.open()) == [f"fire {n}" for n in range(fires)]  # each once


def test_an_instance_changed_after_it_finished_reads_as_changed(fenced_alias: str) -> None:
    sessions = Sessions(fenced_alias)
    storage = sessions.build(finished=3, fires=RECENT_LIMIT)
    with storage.acquire_lock():
        storage["t_page#1"].metadata["note"] = "changed later"
        storage.save()
    assert sessions.open()["t_page#1"].metadata["note"] == "changed later"
    assert "note" not in sessions.open()["t_page#2"].metadata


def test_only_unfinished_instances_live_in_the_head(fenced_alias: str) -> None:
    sessions = Sessions(fenced_alias)
    sessions.build(finished=5, fires=2)
    head = sessions.head()
    assert set(head.instances) == {"t_wait#0"}  # every t_page instance finished
    assert len(sessions.open().instances) == 5 + 2 + 1
