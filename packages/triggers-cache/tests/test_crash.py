"""A saver that dies between its writes leaves the last whole state, and saves go on.

On Redis a save is one script, so there is no "between". On memcached a save
stores its history documents, then compare-and-sets the head; on the chained
caches it adds its head, then moves the pointer. The real cache is wrapped
so that the second step fails, as a killed process would leave it.
"""

from __future__ import annotations

from typing import Any

import pytest
from sessions import Sessions, page_numbers

from triggers.manager import TriggerManager


class DiesAt:
    """A real cache object (or client) whose ``method`` fails for one key."""

    def __init__(self, real: Any, method: str, key: str) -> None:
        self._real, self._method, self._key = real, method, key

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._real, name)
        if name != self._method:
            return attribute

        def dying(key: str, *args: Any, **kwargs: Any) -> Any:
            if key == self._key:
                raise ConnectionError("the saver died here")
            return attribute(key, *args, **kwargs)

        return dying


def _dying_saver(sessions: Sessions, alias: str) -> Any:
    storage = sessions.open()
    store: Any = storage.store
    real = store._cache()
    if alias == "memcached":
        client = DiesAt(real._cache, "cas", real.make_and_validate_key(storage.keys.head))

        class Cache:
            _cache = client

            def __getattr__(self, name: str) -> Any:
                return getattr(real, name)

        store._cache = Cache
    else:
        store._cache = lambda: DiesAt(real, "set", storage.keys.head)
    return storage


@pytest.mark.parametrize("alias", ["memcached", "database", "locmem"])
@pytest.mark.parametrize("crashes", [1, 3])
def test_saves_go_on_after_savers_died_half_way(
    alias: str, crashes: int, request: pytest.FixtureRequest
) -> None:
    request.getfixturevalue({"memcached": "memcached_server", "database": "postgresql_server",
                             "locmem": "remove_file_cache"}[alias])
    sessions = Sessions(alias)
    sessions.build(fires=1)
    for n in range(crashes):
        storage = _dying_saver(sessions, alias)
        with pytest.raises(Exception, match="the saver died here"):
            TriggerManager(storage).fire("page", {"n": f"crash {n}"})
        # memcached: the head never moved, the fire is not there; chained: the
        # head was added and readers step over the pointer onto it.
        shown = page_numbers(sessions.open())
        if alias == "memcached":
            assert shown == ["fire 0"]
        else:
            assert shown[-1] in (f"crash {n}", "fire 0")
    TriggerManager(sessions.open()).fire("page", {"n": "after"})
    shown = page_numbers(sessions.open())
    assert shown[0] == "fire 0" and shown[-1] == "after"
    assert len(shown) == len(set(shown))
