"""What the cache backend does with real caches: keys, sizes, stale holders, corruption, expiry."""

from __future__ import annotations

import time
import uuid

import pytest

from triggers.errors import (
    ConfigurationError,
    CorruptSessionError,
    SessionLimitError,
    StaleSessionError,
)
from triggers_cache import (
    CacheStorageBackend,
    DatabaseCacheStorageBackend,
    FileCacheStorageBackend,
    LocalCacheStorageBackend,
    MemcachedStorageBackend,
)
from triggers_cache.caches import cache_for


def prefix() -> str:
    return f"k{uuid.uuid4().hex[:12]}"


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


@pytest.mark.usefixtures("memcached_server")
def test_a_session_too_big_for_memcached_is_refused_and_the_stored_one_kept() -> None:
    key_prefix = prefix()
    saved("big", "memcached", key_prefix, small="kept")
    storage = CacheStorageBackend("big", cache="memcached", key_prefix=key_prefix)
    assert isinstance(storage, MemcachedStorageBackend)
    with storage.acquire_lock():
        storage.metadata["huge"] = "x" * 1_100_000
        with pytest.raises(
            SessionLimitError, match=r"session .big. takes .* bytes.*Nothing was written"
        ):
            storage.save()
    assert CacheStorageBackend("big", cache="memcached", key_prefix=key_prefix).metadata == {
        "small": "kept"
    }


class HeadNeverMoves:
    """A real cache whose ``set`` of the head key fails: a saver that dies
    after adding its version and before moving the head."""

    def __init__(self, cache: object, head_key: str) -> None:
        self._cache = cache
        self._head_key = head_key

    def set(self, key: str, *args: object, **kwargs: object) -> None:
        if key == self._head_key:
            raise ConnectionError("the saver died before moving the head")
        self._cache.set(key, *args, **kwargs)  # type: ignore[attr-defined]

    def __getattr__(self, name: str) -> object:
        return getattr(self._cache, name)


@pytest.mark.usefixtures("redis_server")
@pytest.mark.parametrize("crashes", [1, 2, 3])
def test_saves_go_on_after_savers_crashed_before_moving_the_head(crashes: int) -> None:
    # Found by the reliability soak (SIGKILL mid-save): after two crashes in a
    # row at this point, every later save was refused as stale, for ever.
    key_prefix = prefix()
    saved("chain", "redis", key_prefix, step=0)
    for step in range(1, crashes + 1):
        storage = CacheStorageBackend("chain", cache="redis", key_prefix=key_prefix)
        storage._cache_object = HeadNeverMoves(cache_for("redis"), storage.keys.head)
        storage._alias = None
        with storage.acquire_lock():
            storage.metadata["step"] = step
            with pytest.raises(Exception, match="before moving the head"):
                storage.save()
        assert CacheStorageBackend("chain", cache="redis", key_prefix=key_prefix).metadata == {
            "step": step  # readers step forward over the head
        }
    saved("chain", "redis", key_prefix, step=crashes + 1)
    assert CacheStorageBackend("chain", cache="redis", key_prefix=key_prefix).metadata == {
        "step": crashes + 1
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


@pytest.mark.usefixtures("redis_server")
@pytest.mark.parametrize(
    ("part", "value", "what"),
    [
        ("head", "not a number", "a version marker"),
        ("version", "{truncated", "text that is not JSON"),
        ("version", '{"format": "other"}', "JSON of an unknown format"),
        ("version", b"\x80\x04garbage", "a bytes"),
        ("version", Foreign(), "a Foreign"),
    ],
)
def test_a_corrupted_value_is_a_clear_error_naming_the_uid(
    part: str, value: object, what: str
) -> None:
    key_prefix = prefix()
    storage = saved("victim", "redis", key_prefix, ok=1)
    key = storage.keys.head if part == "head" else storage.keys.version(1)
    cache_for("redis").set(key, value)
    with pytest.raises(CorruptSessionError, match=f"session 'victim': the cache holds {what}"):
        _ = CacheStorageBackend("victim", cache="redis", key_prefix=key_prefix).metadata
    assert cache_for("redis").get(key).__class__ is value.__class__  # left as it was


@pytest.mark.usefixtures("redis_server")
def test_sessions_expire_after_their_timeout() -> None:
    key_prefix = prefix()
    storage = CacheStorageBackend("brief", cache="redis", key_prefix=key_prefix, timeout=1)
    with storage.acquire_lock():
        storage.metadata["x"] = 1
        storage.save()
    assert CacheStorageBackend("brief", cache="redis", key_prefix=key_prefix).metadata == {"x": 1}
    time.sleep(2.2)
    assert CacheStorageBackend("brief", cache="redis", key_prefix=key_prefix).metadata == {}


@pytest.mark.usefixtures("redis_server")
def test_the_timeout_is_the_time_to_live_of_every_key_and_none_never_expires() -> None:
    redis = cache_for("django_redis")  # django-redis can report a key's ttl
    forever = saved("forever", "django_redis", prefix(), x=1)
    assert redis.ttl(forever.keys.head) is None
    assert redis.ttl(forever.keys.version(1)) is None
    timed = CacheStorageBackend("timed", cache="django_redis", key_prefix=prefix(), timeout=300)
    with timed.acquire_lock():
        timed.metadata["x"] = 1
        timed.save()
    assert 290 <= redis.ttl(timed.keys.head) <= 300
    assert 290 <= redis.ttl(timed.keys.version(1)) <= 300


def test_the_class_follows_the_cache() -> None:
    assert type(CacheStorageBackend("u", cache="locmem")) is LocalCacheStorageBackend
    assert type(CacheStorageBackend("u", cache="file")) is FileCacheStorageBackend
    assert type(CacheStorageBackend("u", cache="redis")) is CacheStorageBackend
    assert type(CacheStorageBackend("u", cache="database")) is DatabaseCacheStorageBackend


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"cache": "nope"}, "cache='nope' is not in Django's CACHES"),
        ({"cache": object()}, "cache= must be an alias of Django's CACHES or a Django cache"),
        ({"cache": "locmem", "timeout": 0}, "timeout=0"),
        ({"cache": "locmem", "timeout": "1"}, "timeout='1'"),
        ({"cache": "locmem", "key_prefix": "has space"}, "key_prefix='has space'"),
    ],
)
def test_bad_options_are_refused_with_the_option_named(
    options: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        CacheStorageBackend("u", **options)  # type: ignore[arg-type]
