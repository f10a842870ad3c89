"""Redis (Django's ``RedisCache`` or django-redis): every save is one atomic script.

Both Django backends hand out their redis-py client, and this store talks to
Redis through it, under the keys Django would make (``KEY_PREFIX``, version).
Values are our JSON text as it is: no pickle on the way in or out.

* **Load**: ``GET`` of the head (one round trip); the whole history adds one
  ``MGET`` per index document.
* **Save**: one ``EVALSHA`` of :data:`SAVE_SCRIPT`, which checks, on the
  server and in one step, that the lock is free (an optimistic save) or still
  ours (a save under the lock) and that the head is still the one loaded (its
  first line: epoch and version), then writes the new history documents and
  the head. A refusal writes nothing.
* **Lock**: redis-py's own :class:`redis.lock.Lock` (what django-redis's
  ``cache.lock()`` returns): ``SET NX PX`` with our token, and renewal and
  release by its Lua scripts, which check the token on the server, so a
  release never deletes a lease another holder took over. Expiry is judged
  by Redis's clock.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from typing import Any

from triggers.errors import StaleSessionError
from triggers.locking import Lease
from triggers_cache.codec import decode_head, head_stamp, legacy_version
from triggers_cache.keys import SessionKeys
from triggers_cache.layout import Loaded, Plan, legacy_keys, load_legacy

__all__ = ["SAVE_SCRIPT", "RedisStore"]

SAVE_SCRIPT = """
-- KEYS: head, lock, history documents...
-- ARGV: expected start of the head ('' = no head may exist), lease token
-- ('' = no lease may be held), new head, head ttl ms, history ttl ms (0: none),
-- history documents...
local holder = redis.call('GET', KEYS[2])
if ARGV[2] == '' then
  if holder then return 'leased' end
elseif holder ~= ARGV[2] then
  return 'lease lost'
end
local head = redis.call('GET', KEYS[1])
if ARGV[1] == '' then
  if head then return 'moved' end
elseif not head or string.sub(head, 1, #ARGV[1]) ~= ARGV[1] then
  return 'moved'
end
local function put(key, value, ttl)
  if ttl > 0 then redis.call('SET', key, value, 'PX', ttl) else redis.call('SET', key, value) end
end
local history_ttl = tonumber(ARGV[5])
for i = 3, #KEYS do put(KEYS[i], ARGV[i + 3], history_ttl) end
put(KEYS[1], ARGV[3], tonumber(ARGV[4]))
return 'ok'
"""

_SAVE_SHA = hashlib.sha1(SAVE_SCRIPT.encode()).hexdigest()

_REFUSALS = {
    "leased": "another holder has the session locked",
    "lease lost": "the lease was taken over by another holder",
    "moved": "a newer version was saved by another writer",
}


def _ms(seconds: float | None) -> int:
    return 0 if seconds is None else max(1, round(seconds * 1000))


class RedisStore:
    """A session's keys in Redis, through the client of a Django cache."""

    def __init__(
        self,
        cache: Callable[[], Any],
        client: Callable[[Any], Any],
        keys: SessionKeys,
        uid: str,
        timeout: float | None,
    ) -> None:
        self._cache = cache
        self._client_of = client
        self.keys = keys
        self.uid = uid
        self.timeout = timeout

    def client(self) -> Any:
        """The redis-py client (the primary: reads must see the latest write)."""
        return self._client_of(self._cache())

    def key(self, key: str) -> str:
        """``key`` as Django's cache names it in Redis."""
        name: str = self._cache().make_and_validate_key(key)
        return name

    def load(self) -> Loaded:
        raw = self.client().get(self.key(self.keys.head))
        if raw is None:
            return Loaded(None, b"")
        version = legacy_version(raw)
        if version is not None:
            return Loaded(load_legacy(self.uid, self.keys, version, self._get_many), raw)
        head = decode_head(self.uid, raw)
        stamp = b"" if head is None else head_stamp(head.epoch, head.version).encode()
        return Loaded(head, stamp)

    def _get_many(self, keys: list[str]) -> Mapping[str, object]:
        found = self.client().mget([self.key(key) for key in keys])
        return {key: raw for key, raw in zip(keys, found, strict=True) if raw is not None}

    def fetch(self, tokens: list[str]) -> Mapping[str, object]:
        found = self._get_many([self.keys.document(token) for token in tokens])
        return {token: found[self.keys.document(token)] for token in tokens if self.keys.document(token) in found}

    def write(self, base: Loaded, plan: Plan, lease: Lease | None) -> Loaded:
        history_ttl = None if self.timeout is None else 2 * self.timeout
        keys = [self.key(self.keys.head), self.key(self.keys.lock)]
        keys += [self.key(self.keys.document(token)) for token in plan.documents]
        args = [base.condition, "" if lease is None else lease.token, plan.text,
                _ms(self.timeout), _ms(history_ttl), *plan.documents.values()]
        client = self.client()
        from redis.exceptions import NoScriptError

        try:
            outcome = client.evalsha(_SAVE_SHA, len(keys), *keys, *args)
        except NoScriptError:  # the first save since the server started: send the script itself
            outcome = client.eval(SAVE_SCRIPT, len(keys), *keys, *args)
        outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
        if outcome != "ok":
            raise StaleSessionError(
                f"session {self.uid!r}: {_REFUSALS.get(outcome, outcome)}; nothing was written"
            )
        if base.head is not None and base.head.epoch == "legacy":
            self._forget_legacy(base.head.version)
        return Loaded(plan.head, head_stamp(plan.head.epoch, plan.head.version).encode())

    def _forget_legacy(self, version: int) -> None:
        """Delete the layout-1 documents a converted session left (best effort)."""
        client = self.client()
        client.delete(*(self.key(key) for key in legacy_keys(self.keys, version)))

    def touch(self, tokens: list[str]) -> None:
        if self.timeout is None or not tokens:
            return
        pipeline = self.client().pipeline(transaction=False)
        for token in tokens:
            pipeline.pexpire(self.key(self.keys.document(token)), _ms(2 * self.timeout))
        pipeline.execute()

    # -- raw access, for operators and tests --------------------------------------

    def get_raw(self, key: str) -> object:
        """What is stored under one of this session's keys (``keys.head``...), as stored."""
        return self.client().get(self.key(key))

    def set_raw(self, key: str, value: str | bytes) -> None:
        self.client().set(self.key(key), value)

    def delete_raw(self, key: str) -> None:
        self.client().delete(self.key(key))

    # -- the lock: redis-py's Lock -------------------------------------------------

    def _lock(self, lease: Lease) -> Any:
        client = self.client()
        lock = client.lock(self.key(self.keys.lock), timeout=lease.ttl, thread_local=False)
        lock.local.token = client.get_encoder().encode(lease.token)
        return lock

    def acquire(self, lease: Lease) -> bool:
        lock = self._lock(lease)
        return bool(lock.acquire(blocking=False, token=lease.token))

    def renew(self, lease: Lease) -> bool:
        from redis.exceptions import LockError

        try:
            return bool(self._lock(lease).reacquire())
        except LockError:  # LockNotOwnedError: it expired, and may have been taken over
            return False

    def release(self, lease: Lease) -> None:
        from redis.exceptions import LockError

        try:
            self._lock(lease).release()
        except LockError:  # no longer ours: leave the new holder's lease alone
            pass
