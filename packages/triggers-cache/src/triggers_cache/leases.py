"""The lock on caches without a lock of their own: a lease key added with a time to live.

``add()`` of the lock key with a random token takes the lock, and the
cache's expiry ends a crashed holder's lease. Renewal and release must only
touch the key while it still holds our token; how each cache does that in
one step:

* the database cache: SQL on its table, conditioned on the stored value
  (:class:`DatabaseLease`), which also takes an expired lock in one
  conditional ``UPDATE`` (Django's ``add`` reads, then updates, so two
  processes could both take an expired lock through it);
* the local-memory cache: under the cache's own mutex (:class:`LocalMemoryLease`);
* others (pylibmc): Django's API only (:class:`AddLease`), where a release
  reads the token and then deletes, so within that one round trip it could
  delete a lease that had just expired and been taken over. The chain of
  heads still refuses any save that would overwrite newer state.

Redis and memcached (pymemcache) have locks of their own (``store_redis``,
``store_memcached``).
"""

from __future__ import annotations

import base64
import math
import pickle
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from triggers.locking import Lease

__all__ = ["AddLease", "DatabaseLease", "LocalMemoryLease"]


class AddLease:
    """The lock key through Django's cache API."""

    def __init__(self, cache: Callable[[], Any], key: str, *, whole_seconds: bool) -> None:
        self._cache = cache
        self.key = key
        self._whole_seconds = whole_seconds

    def timeout(self, lease: Lease) -> int:
        """The lock key's time to live: never shorter than the lease.

        One second more on a cache whose expiry has a granularity of one
        second (the database cache rounds down, memcached's clock ticks),
        where the key could otherwise vanish up to a second early and let
        another process take the lock while the lease still runs.
        """
        return max(1, math.ceil(lease.ttl)) + (1 if self._whole_seconds else 0)

    def acquire(self, lease: Lease) -> bool:
        return bool(self._cache().add(self.key, lease.token, timeout=self.timeout(lease)))

    def renew(self, lease: Lease) -> bool:
        cache = self._cache()
        if cache.get(self.key) != lease.token:
            return False
        return bool(cache.touch(self.key, timeout=self.timeout(lease)))

    def release(self, lease: Lease) -> None:
        cache = self._cache()
        if cache.get(self.key) == lease.token:
            cache.delete(self.key)


class LocalMemoryLease(AddLease):
    """LocMemCache: renewal and release under the cache's own mutex, so nothing comes between."""

    def _holds(self, cache: Any, key: str, token: str) -> bool:
        stored = cache._cache.get(key)
        return stored is not None and not cache._has_expired(key) and pickle.loads(stored) == token

    def renew(self, lease: Lease) -> bool:
        cache = self._cache()
        key = cache.make_and_validate_key(self.key)
        with cache._lock:
            if not self._holds(cache, key, lease.token):
                return False
            cache._expire_info[key] = cache.get_backend_timeout(self.timeout(lease))
            return True

    def release(self, lease: Lease) -> None:
        cache = self._cache()
        key = cache.make_and_validate_key(self.key)
        with cache._lock:
            if self._holds(cache, key, lease.token):
                cache._delete(key)


class DatabaseLease(AddLease):
    """DatabaseCache: every step one SQL statement on the cache table, conditioned on the token.

    The token is matched as Django stores it (base64 of its pickle), and
    expiry is judged as Django judges it, by this process's clock.
    """

    def _execute(self, statement: str, *params: Any) -> int:
        from django.db import connections, router

        cache = self._cache()
        database = router.db_for_write(cache.cache_model_class)
        connection = connections[database]
        table = connection.ops.quote_name(cache._table)
        with connection.cursor() as cursor:
            cursor.execute(statement.format(table=table), params)
            return int(cursor.rowcount)

    def _stored(self, token: str) -> str:
        return base64.b64encode(pickle.dumps(token, self._cache().pickle_protocol)).decode("latin1")

    def _when(self, seconds: float, *, whole: bool = True) -> Any:
        """``seconds`` from now, as the database cache stores expiry times (in whole seconds)."""
        from django.conf import settings
        from django.db import connections, router

        moment = datetime.fromtimestamp(time.time() + seconds, UTC if settings.USE_TZ else None)
        if whole:
            moment = moment.replace(microsecond=0)
        database = router.db_for_write(self._cache().cache_model_class)
        return connections[database].ops.adapt_datetimefield_value(moment)

    def acquire(self, lease: Lease) -> bool:
        from django.db import DatabaseError, router, transaction

        key = self._cache().make_and_validate_key(self.key)
        token, expires = self._stored(lease.token), self._when(self.timeout(lease))
        taken = self._execute(
            "UPDATE {table} SET value = %s, expires = %s WHERE cache_key = %s AND expires < %s",
            token, expires, key, self._when(0, whole=False),
        )
        if taken:
            return True
        try:
            with transaction.atomic(using=router.db_for_write(self._cache().cache_model_class)):
                self._execute(
                    "INSERT INTO {table} (cache_key, value, expires) VALUES (%s, %s, %s)",
                    key, token, expires,
                )
        except DatabaseError:  # the key exists: the lock is held
            return False
        return True

    def renew(self, lease: Lease) -> bool:
        return bool(self._execute(
            "UPDATE {table} SET expires = %s WHERE cache_key = %s AND value = %s",
            self._when(self.timeout(lease)), self._cache().make_and_validate_key(self.key),
            self._stored(lease.token),
        ))

    def release(self, lease: Lease) -> None:
        self._execute(
            "DELETE FROM {table} WHERE cache_key = %s AND value = %s",
            self._cache().make_and_validate_key(self.key), self._stored(lease.token),
        )
