"""While memcached is down, every load fails loudly; it never looks like a missing session.

Found by the reliability suite: pymemcache's HashClient, after one failed
call, answered calls for a second with default values (``get`` -> None), so
a live session loaded as an empty one during an outage, and ``add`` kept
answering False for a while after the server came back.
"""

from __future__ import annotations

import socket

import pytest
from django.conf import settings

from triggers.errors import StorageError
from triggers_cache import CacheStorageBackend


def _port_nobody_listens_on() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_every_load_during_an_outage_is_an_error_naming_the_session() -> None:
    alias = "memcached_down"
    settings.CACHES[alias] = {
        "BACKEND": "django.core.cache.backends.memcached.PyMemcacheCache",
        "LOCATION": f"127.0.0.1:{_port_nobody_listens_on()}",
    }
    for _ in range(4):
        with pytest.raises(StorageError, match="could not load session 'down'"):
            _ = CacheStorageBackend("down", cache=alias).metadata
