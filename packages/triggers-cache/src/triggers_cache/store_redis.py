"""Redis (Django's ``RedisCache`` or django-redis): every save is one atomic script.

The session's keys are read and written through the cache's redis-py client
(:class:`~triggers_cache.primitives.RedisPrimitives`); this module is what
Redis does better than the key-value primitives:

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
from typing import TYPE_CHECKING, Any

from triggers.errors import StaleSessionError
from triggers.keyvalue.codec import Head, as_text, decode_head, head_stamp
from triggers.keyvalue.keys import SessionKeys
from triggers.keyvalue.layout import Loaded, Plan
from triggers.locking import Lease
from triggers_cache.primitives import RedisPrimitives, milliseconds

if TYPE_CHECKING:
    from triggers_cache.store import CacheStore

__all__ = ["SAVE_SCRIPT", "RedisSessions"]

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
  if head then return 'moved ' .. string.match(head, '^[^\\n]*') end
elseif not head then
  return 'moved '
elseif string.sub(head, 1, #ARGV[1]) ~= ARGV[1] then
  return 'moved ' .. string.match(head, '^[^\\n]*')
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


class RedisSessions:
    """A session's head and lock in Redis, through the client of a Django cache."""

    def __init__(self, store: CacheStore, redis: RedisPrimitives) -> None:
        self.store = store
        self.redis = redis

    def head_key(self, keys: SessionKeys, head: Head) -> str:
        return keys.head

    def load(self, uid: str, keys: SessionKeys) -> Loaded:
        raw = self.redis.get(keys.head)
        if raw is None:
            return Loaded(None, b"")
        if self.store.is_older_layout(raw):
            return Loaded(self.store.load_older_layout(uid, keys, raw), raw)
        head = decode_head(uid, raw)
        stamp = b"" if head is None else head_stamp(head.epoch, head.version).encode()
        return Loaded(head, stamp)

    def write(self, uid: str, keys: SessionKeys, base: Loaded, plan: Plan, lease: Lease | None) -> Loaded:
        name = self.redis.name
        names = [name(keys.head), name(keys.lock), *(name(keys.document(t)) for t in plan.documents)]
        args = [base.condition, "" if lease is None else lease.token, plan.text,
                milliseconds(self.store.session_ttl) or 0, milliseconds(self.store.history_ttl) or 0,
                *plan.documents.values()]
        client = self.redis.client()
        from redis.exceptions import NoScriptError

        try:
            outcome = client.evalsha(_SAVE_SHA, len(names), *names, *args)
        except NoScriptError:  # the first save since the server started: send the script itself
            outcome = client.eval(SAVE_SCRIPT, len(names), *names, *args)
        outcome = str(as_text(outcome))
        if outcome != "ok":
            raise _refusal(uid, base.head, outcome)
        return Loaded(plan.head, head_stamp(plan.head.epoch, plan.head.version).encode())

    # -- the lock: redis-py's Lock -------------------------------------------------

    def _lock(self, keys: SessionKeys, lease: Lease) -> Any:
        client = self.redis.client()
        lock = client.lock(self.redis.name(keys.lock), timeout=lease.ttl, thread_local=False)
        lock.local.token = client.get_encoder().encode(lease.token)
        return lock

    def take(self, keys: SessionKeys, lease: Lease) -> bool:
        return bool(self._lock(keys, lease).acquire(blocking=False, token=lease.token))

    def renew(self, keys: SessionKeys, lease: Lease) -> bool:
        from redis.exceptions import LockError

        try:
            return bool(self._lock(keys, lease).reacquire())
        except LockError:  # LockNotOwnedError: it expired, and may have been taken over
            return False

    def release(self, keys: SessionKeys, lease: Lease) -> None:
        from redis.exceptions import LockError

        try:
            self._lock(keys, lease).release()
        except LockError:  # no longer ours: leave the new holder's lease alone
            pass


def _refusal(uid: str, base: Head | None, outcome: str) -> StaleSessionError:
    """The refusal the script answered: ``leased``, ``lease lost``, or ``moved`` and the head's first line."""
    if outcome == "leased":
        return StaleSessionError.leased(uid)
    if outcome == "lease lost":
        return StaleSessionError.lease_taken_over(uid)
    if base is None:
        return StaleSessionError.created_elsewhere(uid)
    stored = outcome.rpartition(" ")[2]
    return StaleSessionError.version_moved(uid, base.version, int(stored) if stored.isdigit() else None)
