"""What the cache backend does with real caches: keys, options, drivers, stale holders, corruption, expiry."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from sessions import Sessions, prefix

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, CorruptSessionError, StaleSessionError
from triggers.manager import TriggerManager
from triggers_cache import CacheStorageBackend
from triggers_cache.caches import cache_for


def saved(uid: str, alias: str, key_prefix: str, **values: object) -> CacheStorageBackend:
    storage = CacheStorageBackend(uid, cache=alias, key_prefix=key_prefix)
    with storage.acquire_lock():
        storage.metadata.update(values)
        storage.save()
    return storage


@pytest.mark.usefixtures("memcached_server")
@pytest.mark.parametrize(
    "uid", ["x" * 1000, "with spaces and\ttabs", "ctrl\x00\x01\x7f", "ünï©ødé ✓", "a:b:c"]
)
def test_every_uid_gets_a_valid_memcached_key(uid: str) -> None:
    key_prefix = prefix()
    saved(uid, "memcached", key_prefix, who=uid)
    assert CacheStorageBackend(uid, cache="memcached", key_prefix=key_prefix).metadata == {
        "who": uid
    }


@pytest.mark.usefixtures("redis_server")
def test_a_holder_whose_lease_expired_cannot_overwrite_the_newcomer() -> None:
    key_prefix = prefix()
    stale = CacheStorageBackend("s", cache="redis", key_prefix=key_prefix)
    with stale.acquire_lock(ttl=1):
        stale.metadata["by"] = "stale"
        time.sleep(1.5)  # the cache ends the lease
        newcomer = saved("s", "redis", key_prefix, by="newcomer")
        with pytest.raises(StaleSessionError):
            stale.save()
    assert newcomer.metadata == {"by": "newcomer"}
    assert CacheStorageBackend("s", cache="redis", key_prefix=key_prefix).metadata == {
        "by": "newcomer"
    }


class Foreign:
    """Something another application pickled into the cache under our key."""


@pytest.mark.parametrize(
    ("value", "what"),
    [
        (b"\x80\x04garbage", "bytes that are not UTF-8 text|a bytes"),
        (Foreign(), "a Foreign|bytes that are not UTF-8 text"),
    ],
)
def test_a_value_no_text_reader_would_store_is_a_clear_error_naming_the_uid(
    fenced_alias: str, value: object, what: str
) -> None:
    """Bytes, and objects Django pickled (the layout's own damage cases run in the conformance suite)."""
    sessions = Sessions(fenced_alias, "victim")
    sessions.build(fires=2)
    key = sessions.keys.document(sessions.head().recent[0])
    if isinstance(value, Foreign):
        cache_for(fenced_alias).set(key, value)  # pickled by Django, as another program would
    else:
        sessions.store.set(key, value, None)  # type: ignore[arg-type]
    with pytest.raises(CorruptSessionError, match=f"session 'victim': the store holds ({what})"):
        _ = len(sessions.open().instances)
    assert sessions.store.get(key) is not None  # left as it was


@pytest.mark.usefixtures("redis_server")
def test_sessions_expire_after_their_timeout() -> None:
    sessions = Sessions("redis", timeout=1)
    sessions.build(fires=1)
    assert sessions.open().metadata != {}
    time.sleep(2.2)
    assert sessions.open().metadata == {}


@pytest.mark.usefixtures("redis_server")
def test_the_timeout_is_the_time_to_live_of_the_head_and_twice_that_of_history() -> None:
    redis = cache_for("django_redis")  # django-redis can report a key's ttl
    forever = Sessions("django_redis", "forever")
    forever.build(fires=1)
    head, keys = forever.head(), forever.keys
    assert redis.ttl(keys.head) is None
    assert redis.ttl(keys.document(head.recent[0])) is None
    timed = Sessions("django_redis", "timed", timeout=300)
    timed.build(fires=1)
    head, keys = timed.head(), timed.keys
    assert 290 <= redis.ttl(keys.head) <= 300
    assert 590 <= redis.ttl(keys.document(head.recent[0])) <= 600


@pytest.mark.usefixtures("redis_server")
def test_history_gets_its_time_to_live_again_before_the_head_could_outlive_it() -> None:
    redis = cache_for("django_redis")
    now = [1_000_000.0]
    sessions = Sessions("django_redis", timeout=300, clock=lambda: now[0])
    storage = sessions.build(fires=2)
    first = sessions.keys.document(sessions.head().recent[0])
    redis.expire(first, 100)  # as if it was written long ago
    now[0] += 100  # within half the timeout: nothing to do yet
    TriggerManager(storage).fire("page", {"n": "early"})
    assert redis.ttl(first) <= 100
    now[0] += 60  # past half the timeout since the session began
    TriggerManager(storage).fire("page", {"n": "late"})
    assert 590 <= redis.ttl(first) <= 600
    assert sessions.head().refreshed == now[0]


def test_one_class_serves_every_cache_and_claims_what_each_guarantees() -> None:
    def claimed(alias: str) -> Capabilities:
        storage = CacheStorageBackend("u", cache=alias)
        assert type(storage) is CacheStorageBackend
        assert storage.capabilities == CacheStorageBackend.capabilities_for(cache=alias)
        return storage.capabilities

    assert claimed("redis") == claimed("django_redis") == CacheStorageBackend.capabilities
    assert claimed("redis").optimistic_saves and claimed("redis").skew_safe_leases
    assert claimed("memcached").optimistic_saves and claimed("memcached").max_record_bytes == 400_000
    assert not claimed("database").optimistic_saves and not claimed("database").skew_safe_leases
    assert claimed("database").cross_process_locking and claimed("database").fenced_saves
    assert not claimed("locmem").shared_state and claimed("locmem").fenced_saves
    assert claimed("file").shared_state and not claimed("file").cross_process_locking
    assert not claimed("file").fenced_saves
    big = CacheStorageBackend.capabilities_for(cache="memcached", max_item_size=2_000_000)
    assert big.max_record_bytes == 800_000


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cache": "nope"}, "cache='nope' is not in Django's CACHES"),
        ({"cache": object()}, "cache= must be an alias of Django's CACHES or a Django cache"),
        ({"cache": "locmem", "key_prefix": "has space"}, "key_prefix='has space'"),
        ({"cache": "locmem", "max_item_size": 2_000_000}, "max_item_size applies to memcached only"),
        ({"cache": "memcached", "max_item_size": 10}, "max_item_size=10: give memcached's item size"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CacheStorageBackend("u", **options)  # type: ignore[arg-type]


MISSING_DRIVER = """
import sys
sys.modules[{module!r}] = None  # as if it was never installed: importing it fails
import triggers_cache
from triggers.errors import ConfigurationError
triggers_cache.configure({{"c": {{"BACKEND": {backend!r}, "LOCATION": "127.0.0.1:1"}}}})
try:
    triggers_cache.CacheStorageBackend("u", cache="c")
except ConfigurationError as error:
    print(error)
"""


@pytest.mark.parametrize(
    ("backend", "module", "install"),
    [
        ("django.core.cache.backends.redis.RedisCache", "redis", "triggers-cache[redis]"),
        ("django_redis.cache.RedisCache", "django_redis", "triggers-cache[django-redis]"),
        ("django.core.cache.backends.memcached.PyMemcacheCache", "pymemcache", "triggers-cache[memcached]"),
    ],
)
def test_a_missing_driver_fails_when_the_storage_is_built_naming_the_pip_command(
    backend: str, module: str, install: str
) -> None:
    script = MISSING_DRIVER.format(module=module, backend=backend)
    shown = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True,
        cwd=Path(__file__).parent,
    ).stdout
    assert f'pip install "{install}"' in shown
    assert "cache 'c'" in shown
