"""A memcached saver that dies between its writes leaves the last whole state, and saves go on.

On memcached a save stores its history documents, then compare-and-sets the
head; the pymemcache client is wrapped so that the ``cas`` fails, as a killed
process would leave it. (On Redis a save is one script, so there is no
"between"; the chains of heads of the other caches are checked by the
conformance suite's ``test_saves_go_on_after_savers_died_half_way``.)
"""

from __future__ import annotations

import functools
from typing import Any

import pytest
from sessions import Sessions, page_numbers

from triggers.manager import TriggerManager
from triggers_cache.store_memcached import MemcachedSessions


class DiesAt:
    """A real pymemcache client whose ``method`` fails for one key."""

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


@pytest.mark.usefixtures("memcached_server")
@pytest.mark.parametrize("crashes", [1, 3])
def test_saves_go_on_after_a_memcached_saver_died_half_way(
    crashes: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    sessions = Sessions("memcached")
    sessions.build(fires=1)
    for n in range(crashes):
        storage = sessions.open()
        memcached = storage.store.heads
        assert isinstance(memcached, MemcachedSessions)
        dying = DiesAt(memcached.client(), "cas", memcached.key(sessions.keys.head))
        with monkeypatch.context() as patch:
            patch.setattr(memcached, "client", functools.partial(lambda client: client, dying))
            with pytest.raises(Exception, match="the saver died here"):
                TriggerManager(storage).fire("page", {"n": f"crash {n}"})
        assert page_numbers(sessions.open()) == ["fire 0"]  # the head never moved
    TriggerManager(sessions.open()).fire("page", {"n": "after"})
    shown = page_numbers(sessions.open())
    assert shown == ["fire 0", "after"]
