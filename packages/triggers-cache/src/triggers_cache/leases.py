"""The lock on the database and local-memory caches: the lease key, compared and changed in one step.

Through Django's API alone (:class:`~triggers.keyvalue.leases.AddLeases`, what
pylibmc gets) a renewal or release reads the token, then writes, so within
that round trip it could touch a lease that had just expired and been taken
over. These two caches can do better:

* the database cache: SQL on its table, conditioned on the stored value
  (:class:`DatabaseLeases`), which also takes an expired lock in one
  conditional ``UPDATE`` (Django's ``add`` reads, then updates, so two
  processes could both take an expired lock through it);
* the local-memory cache: under the cache's own mutex (:class:`LocalMemoryLeases`).

Redis and memcached (pymemcache) have locks of their own (``store_redis``,
``store_memcached``).
"""

from __future__ import annotations

import base64
import math
import pickle
import time
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from triggers.keyvalue.keys import SessionKeys
from triggers.keyvalue.leases import AddLeases
from triggers.locking import Lease

if TYPE_CHECKING:
    from triggers_cache.store import CacheStore

__all__ = ["DatabaseLeases", "LocalMemoryLeases"]


class LocalMemoryLeases(AddLeases):
    """LocMemCache: renewal and release under the cache's own mutex, so nothing comes between."""

    store: CacheStore

    def _holds(self, cache: Any, key: str, token: str) -> bool:
        stored = cache._cache.get(key)
        return stored is not None and not cache._has_expired(key) and pickle.loads(stored) == token

    def renew(self, keys: SessionKeys, lease: Lease) -> bool:
        cache = self.store.cache
        key = cache.make_and_validate_key(keys.lock)
        with cache._lock:
            if not self._holds(cache, key, lease.token):
                return False
            cache._expire_info[key] = cache.get_backend_timeout(math.ceil(self.ttl(lease)))
            return True

    def release(self, keys: SessionKeys, lease: Lease) -> None:
        cache = self.store.cache
        key = cache.make_and_validate_key(keys.lock)
        with cache._lock:
            if self._holds(cache, key, lease.token):
                cache._delete(key)


class DatabaseLeases(AddLeases):
    """DatabaseCache: every step one SQL statement on the cache table, conditioned on the token.

    The token is matched as Django stores it (base64 of its pickle), and
    expiry is judged as Django judges it, by this process's clock.
    """

    store: CacheStore

    def __init__(self, store: CacheStore) -> None:
        super().__init__(store, whole_seconds=True)

    def _execute(self, statement: str, *params: Any) -> int:
        from django.db import connections, router

        cache = self.store.cache
        connection = connections[router.db_for_write(cache.cache_model_class)]
        table = connection.ops.quote_name(cache._table)
        with connection.cursor() as cursor:
            cursor.execute(statement.format(table=table), params)
            return int(cursor.rowcount)

    def _stored(self, token: str) -> str:
        return base64.b64encode(pickle.dumps(token, self.store.cache.pickle_protocol)).decode("latin1")

    def _when(self, seconds: float, *, whole: bool = True) -> Any:
        """``seconds`` from now, as the database cache stores expiry times (in whole seconds)."""
        from django.conf import settings
        from django.db import connections, router

        moment = datetime.fromtimestamp(time.time() + seconds, UTC if settings.USE_TZ else None)
        if whole:
            moment = moment.replace(microsecond=0)
        database = router.db_for_write(self.store.cache.cache_model_class)
        return connections[database].ops.adapt_datetimefield_value(moment)

    def _expires(self, lease: Lease) -> Any:
        return self._when(math.ceil(self.ttl(lease)))

    def take(self, keys: SessionKeys, lease: Lease) -> bool:
        from django.db import DatabaseError, router, transaction

        cache = self.store.cache
        key = cache.make_and_validate_key(keys.lock)
        token, expires = self._stored(lease.token), self._expires(lease)
        taken = self._execute(
            "UPDATE {table} SET value = %s, expires = %s WHERE cache_key = %s AND expires < %s",
            token, expires, key, self._when(0, whole=False),
        )
        if taken:
            return True
        try:
            with transaction.atomic(using=router.db_for_write(cache.cache_model_class)):
                self._execute(
                    "INSERT INTO {table} (cache_key, value, expires) VALUES (%s, %s, %s)",
                    key, token, expires,
                )
        except DatabaseError:  # the key exists: the lock is held
            return False
        return True

    def renew(self, keys: SessionKeys, lease: Lease) -> bool:
        return bool(self._execute(
            "UPDATE {table} SET expires = %s WHERE cache_key = %s AND value = %s",
            self._expires(lease), self.store.cache.make_and_validate_key(keys.lock),
            self._stored(lease.token),
        ))

    def release(self, keys: SessionKeys, lease: Lease) -> None:
        self._execute(
            "DELETE FROM {table} WHERE cache_key = %s AND value = %s",
            self.store.cache.make_and_validate_key(keys.lock), self._stored(lease.token),
        )
