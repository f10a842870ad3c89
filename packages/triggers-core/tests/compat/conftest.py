"""Plumbing of the Triggers 2.0 test suite ported here (issue 16).

Triggers 2.0 ran its tests on its Django-cache backend (Redis) with
``ThreadingTaskRunner`` as the default runner. The port runs every test on
three backends, by overriding the fixtures of the ``triggers`` pytest plugin
(:mod:`triggers.pytest_plugin`):

``memory``
    the in-memory reference backend, in a namespace of the test's own;
``sql``
    triggers-sql on an SQLite file in the test's ``tmp_path``;
``cache``
    triggers-cache on a Django local-memory cache (alias ``compat-locmem``,
    added to Django's settings when first needed), with a key prefix of the
    test's own.

Tasks run on a ``ThreadingTaskRunner``, as in Triggers 2.0, and again on the
``EagerTaskRunner`` (the default here, and the ``trigger_manager`` fixture's);
the tests wait for them with ``manager.join_all()`` where the original called
``ThreadingTaskRunner.join_all()``. A backend whose distribution is not
installed skips its tests, saying which.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

_COMPAT_DIR = str(Path(__file__).resolve().parent)
if _COMPAT_DIR not in sys.path:
    sys.path.insert(0, _COMPAT_DIR)

from triggers.memory import MemoryStorageBackend  # noqa: E402
from triggers.registry import storage_backends  # noqa: E402
from triggers.runners import EagerTaskRunner, TaskRunner, ThreadingTaskRunner  # noqa: E402
from triggers.storage import TriggerStorageBackend  # noqa: E402

BACKENDS = ["memory", "sql", "cache"]
RUNNERS = ["threading", "eager"]
CACHE_ALIAS = "compat-locmem"

StorageFactory = Callable[[str], TriggerStorageBackend]


def _local_memory_cache() -> str:
    """The alias of a Django local-memory cache, configuring Django if nobody has."""
    pytest.importorskip("triggers_cache", reason="the cache backend needs triggers-cache (Django)")
    from django.conf import settings

    from triggers_cache import configure

    cache = {"BACKEND": "django.core.cache.backends.locmem.LocMemCache", "LOCATION": CACHE_ALIAS}
    if not configure({CACHE_ALIAS: cache}):
        settings.CACHES[CACHE_ALIAS] = cache  # Django was set up by someone else: add ours
    return CACHE_ALIAS


@pytest.fixture(params=BACKENDS)
def compat_backend(request: pytest.FixtureRequest) -> str:
    """The backend a ported test runs on (each in turn)."""
    name: str = request.param
    return name


@pytest.fixture
def make_storage(compat_backend: str, tmp_path: Path) -> Iterator[StorageFactory]:
    """Build storage objects of the backend under test, isolated from other tests.

    Each call builds a new object; objects for the same uid share the session
    (and its lock), as two processes of an application would.
    """
    run = uuid.uuid4().hex[:12]
    made: list[TriggerStorageBackend] = []
    if compat_backend == "memory":
        def build(uid: str) -> TriggerStorageBackend:
            return MemoryStorageBackend(uid, namespace=f"compat-{run}")
    elif compat_backend == "sql":
        pytest.importorskip("triggers_sql", reason="the sql backend needs triggers-sql")
        url = f"sqlite:///{tmp_path / 'triggers.db'}"

        def build(uid: str) -> TriggerStorageBackend:
            return storage_backends.get("sql", uid, url=url)
    else:
        alias = _local_memory_cache()

        def build(uid: str) -> TriggerStorageBackend:
            return storage_backends.get("cache", uid, cache=alias, key_prefix=f"compat-{run}")

    def make(uid: str) -> TriggerStorageBackend:
        storage = build(f"{uid}-{run}")
        made.append(storage)
        return storage

    yield make
    for storage in made:
        storage.close()
    MemoryStorageBackend.clear(f"compat-{run}")


@pytest.fixture
def trigger_storage(make_storage: StorageFactory, request: pytest.FixtureRequest) -> TriggerStorageBackend:
    """The session of the test, named after it (as Triggers 2.0 named it ``_testMethodName``)."""
    return make_storage(request.node.originalname)


@pytest.fixture(params=RUNNERS)
def trigger_runner(request: pytest.FixtureRequest) -> Iterator[TaskRunner]:
    """Tasks run in threads, as Triggers 2.0's test mixin made them run, and eagerly."""
    runner: TaskRunner = ThreadingTaskRunner(max_workers=4) if request.param == "threading" else EagerTaskRunner()
    yield runner
    runner.close()
