"""DatabaseCache rounds expiry times down to the second: the lock key must outlive the lease.

Found by the reliability suite: with a 1 s lease the lock key could expire
0.1 s after it was taken, so another process could take the lock while the
holder still held a valid lease (and the holder's save was then refused).
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime

import pytest

from triggers_cache import CacheStorageBackend
from triggers_cache.caches import cache_for


@pytest.mark.usefixtures("postgresql_server")
@pytest.mark.parametrize("ttl", [1, 1.5, 30])
def test_the_lock_key_lives_at_least_as_long_as_the_lease(ttl: float) -> None:
    from django.db import connection

    storage = CacheStorageBackend("lease", cache="database", key_prefix=f"k{uuid.uuid4().hex[:12]}")
    cache = cache_for("database")

    def lock_key_expires() -> datetime:
        with connection.cursor() as cursor:
            cursor.execute(
                f'SELECT expires FROM "{cache._table}" WHERE cache_key = %s',
                [cache.make_and_validate_key(storage.store.keys_for(storage.uid).lock)],
            )
            (expires,) = cursor.fetchone()
        return expires  # type: ignore[no-any-return]

    taken = time.time()
    with storage.acquire_lock(ttl=ttl):
        assert lock_key_expires() >= datetime.fromtimestamp(taken + ttl, UTC)
        renewed = storage.renew_lock()
        assert lock_key_expires() >= datetime.fromtimestamp(renewed.expires_at, UTC)
