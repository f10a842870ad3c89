"""Sessions stored by triggers-cache 0.1 (layout 1) are read, and converted by their next save."""

from __future__ import annotations

import pytest
from sessions import TASKS, Sessions, page_numbers

from triggers import values
from triggers.keyvalue.codec import decode_head
from triggers.manager import TriggerManager
from triggers_cache.caches import cache_for
from triggers_cache.legacy import legacy_key


def _store_layout_1(sessions: Sessions, version: int, crashed_saves: int = 0) -> None:
    """What triggers-cache 0.1 left: the version under the head key, whole documents under v<N>.

    Written through Django's API, as that version wrote it; ``crashed_saves``
    later versions were added by saves that died before moving the head.
    """
    cache, keys = cache_for(sessions.alias), sessions.keys
    configs = {name: {**directives, "run": directives["run"]} for name, directives in TASKS.items()}
    for v in range(version, version + crashed_saves + 1):
        instances = {
            f"t_page#{n}": {"task": "t_page", "status": "finished", "kwargs": {"page": {"n": n}}, "metadata": {}}
            for n in range(v)
        }
        instances["t_wait#0"] = {"task": "t_wait", "status": "unstarted", "kwargs": {}, "metadata": {}}
        document = {
            "format": "triggers-cache/1", "uid": sessions.uid, "version": v, "tasks": configs,
            "instances": instances,
            "metadata": {"instanceCounts": {"t_page": v, "t_wait": 1}, "triggerKwargs": {"start": {}}},
        }
        cache.set(legacy_key(keys, v), values.canonical_json(document), timeout=None)
    cache.set(keys.head, str(version), timeout=None)


@pytest.mark.parametrize("crashed_saves", [0, 2])
def test_a_layout_1_session_reads_whole_and_its_next_save_converts_it(
    fenced_alias: str, crashed_saves: int
) -> None:
    sessions = Sessions(fenced_alias)
    _store_layout_1(sessions, version=5, crashed_saves=crashed_saves)
    latest = 5 + crashed_saves
    storage = sessions.open()
    assert sorted(page_numbers(storage)) == list(range(latest))
    assert storage.metadata["instanceCounts"] == {"t_page": latest, "t_wait": 1}
    TriggerManager(storage).fire("page", {"n": "after"})
    reread = sessions.open()
    assert sorted(map(str, page_numbers(reread))) == sorted([*map(str, range(latest)), "after"])
    keys, store = sessions.keys, reread.store
    raw = store.get(keys.head)
    assert raw is not None and legacy_free(sessions.uid, raw)
    assert all(store.get(legacy_key(keys, v)) is None for v in range(5, latest + 1))


def legacy_free(uid: str, raw: object) -> bool:
    """True if the head key holds a layout-2 head (or, on chained caches, a pointer to one)."""
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    return text.startswith("triggers-cache/2 pointer") or decode_head(uid, raw) is not None


def test_a_layout_1_session_whose_documents_are_gone_loads_empty_and_takes_saves(
    fenced_alias: str,
) -> None:
    sessions = Sessions(fenced_alias)
    _store_layout_1(sessions, version=3)
    sessions.store.delete(legacy_key(sessions.keys, 3))
    assert sessions.open().metadata == {}
    sessions.build(fires=1)
    assert page_numbers(sessions.open()) == ["fire 0"]
