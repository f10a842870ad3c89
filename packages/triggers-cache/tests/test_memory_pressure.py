"""Sessions in a Redis that evicts keys under memory pressure (``maxmemory``, ``allkeys-lru``).

A private ``redis-server`` with a few megabytes of memory, filled by other
keys while sessions fire, so Redis itself picks which keys to drop. Whatever
it drops, every load must show either the latest state this test saved (in
the session's current incarnation) or an empty session (its head was
dropped), never older or mixed state; loading the whole history either
succeeds with exactly the pages fired since the session (re)started or
raises :class:`SessionLostError` naming the uid; and every fire succeeds.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Iterator

import pytest
from django.conf import settings
from sessions import TASKS, Sessions, page_numbers

from triggers.manager import TriggerManager
from triggers_cache import SessionLostError
from triggers_cache.caches import cache_for
from triggers_conformance.servers import Server, serve

ROUNDS = 12
SESSIONS = 4
FILLER = 40  # keys of 20 KB per round: about 0.8 MB, against a 3 MB limit


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


@pytest.fixture(scope="module")
def evicting_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Django cache alias on a private Redis that evicts any key when memory runs out."""
    import redis

    port = _free_port()
    folder = tmp_path_factory.mktemp("redis-lru")
    command = [
        "redis-server", "--bind", "127.0.0.1", "--port", str(port), "--save", "",
        "--appendonly", "no", "--dir", str(folder), "--maxmemory", "3mb",
        "--maxmemory-policy", "allkeys-lru", "--maxmemory-samples", "3",
    ]

    def ready() -> bool:
        return bool(redis.Redis(port=port, socket_timeout=1).ping())

    server = Server("private Redis (maxmemory 3mb, allkeys-lru)", "127.0.0.1", port,
                    command=command, ready=ready, install="apt-get install redis-server")
    with serve(server):
        settings.CACHES["redis_lru"] = {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": f"redis://127.0.0.1:{port}/0",
        }
        yield "redis_lru"


class Tracked:
    """One session and what this test knows it committed last."""

    def __init__(self, alias: str, uid: str) -> None:
        self.sessions = Sessions(alias, uid)
        self.incarnation = ""
        self.pages: list[str] = []
        self.resets = self.losses = 0

    def start(self) -> None:
        storage = self.sessions.open()
        manager = TriggerManager(storage)
        manager.update_configuration(TASKS)
        manager.fire("start")
        self.incarnation = secrets.token_hex(4)
        storage.transact(lambda: storage.metadata.update(incarnation=self.incarnation))
        self.pages = []

    def fire(self, round_: int) -> None:
        page = f"{self.incarnation}-{round_}"
        storage = self.sessions.open()
        TriggerManager(storage).fire("page", {"n": page})
        self.pages.append(page)

    def check(self) -> None:
        """The session as stored is the last state committed, or an empty one."""
        fresh = self.sessions.open()
        if "incarnation" not in fresh.metadata:
            # Its head was evicted: it loads empty (or holds only what fires saved
            # into the empty session since, which this test does not count on).
            self.resets += 1
            self.start()  # it starts again, as an application would
            return
        assert fresh.metadata["incarnation"] == self.incarnation, "an older incarnation came back"
        assert fresh.instance_count("t_page") == len(self.pages)
        try:
            stored = page_numbers(fresh)
        except SessionLostError as lost:
            assert repr(self.sessions.uid) in str(lost)
            self.losses += 1
            return
        assert stored == self.pages, "the history read back is not what was fired"


def test_every_load_is_the_latest_state_or_empty_and_every_fire_lands(evicting_redis: str) -> None:
    client = cache_for(evicting_redis)._cache.get_client(None, write=True)
    tracked = [Tracked(evicting_redis, f"pressure-{n}") for n in range(SESSIONS)]
    for session in tracked:
        session.start()
    for round_ in range(ROUNDS):
        for session in tracked:
            for _ in range(3):
                session.fire(round_)
        for n in range(FILLER):
            client.set(f"filler:{round_}:{n}", secrets.token_bytes(20_000))
        for session in tracked:
            session.check()
    evicted = client.info("stats")["evicted_keys"]
    assert evicted > 0, "Redis evicted nothing: the test did not put it under pressure"
    print(f"evicted {evicted} keys; sessions started again "
          f"{sum(t.resets for t in tracked)} times, reported lost history "
          f"{sum(t.losses for t in tracked)} times")
