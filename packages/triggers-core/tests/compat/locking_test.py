"""Port of Triggers 2.0's tests/locking_test.py (MIT License, (c) 2017 EFL Global).

Triggers 2.0 locked any key of its Redis cache (``acquire_lock(key, ttl,
block)``), and ``Lockable`` objects locked the key ``get_lock_name()`` named.
Here a lock belongs to a session of a storage backend, so the plumbing maps
both onto the backend under test (see ``compat/conftest.py``):

* ``acquire_lock(key, ttl, block)`` takes the lock of a new storage object
  for the session ``key``; ``block=False`` is ``timeout=0``.
* a ``Lockable`` holds one storage object for the session its
  ``get_lock_name()`` names, built when it is made.
* ``LockAcquisitionFailed`` is imported from :mod:`triggers.locking`, which
  keeps it as the name of :class:`~triggers.errors.LockTimeoutError`.

The tests with processes need a lock shared between processes: on the
backends that keep their sessions in one process (memory, and the cache
backend on Django's local-memory cache) they are skipped, saying so. Every
expectation is the original's.
"""

from __future__ import annotations

import multiprocessing
import unittest
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from threading import Thread, current_thread

import pytest

from triggers.locking import Lease, LockAcquisitionFailed
from triggers.storage import TriggerStorageBackend

_CASE = unittest.TestCase()

_factory: Callable[[str], TriggerStorageBackend] | None = None
"""The test's ``make_storage`` (set by the autouse fixture; inherited by forked processes)."""


def _storage_for(key: str) -> TriggerStorageBackend:
    assert _factory is not None, "the autouse fixture sets the storage factory"
    return _factory(key)


@contextmanager
def acquire_lock(key: str, ttl: float | bool = True, block: bool = True) -> Iterator[None]:
    """Triggers 2.0's ``acquire_lock``, on the session ``key`` of the backend under test.

    ``ttl=True`` meant "the default": here the backend's ``lease_ttl``.
    """
    storage = _storage_for(key)
    with storage.acquire_lock(ttl=None if ttl is True else float(ttl), timeout=None if block else 0):
        yield


class Lockable:
    """Triggers 2.0's ``Lockable``: an object that locks the session ``get_lock_name()`` names."""

    def __init__(self) -> None:
        self._storage = _storage_for(self.get_lock_name())

    def get_lock_name(self) -> str:
        raise NotImplementedError

    def acquire_lock(self, ttl: float | bool = True, block: bool = True) -> AbstractContextManager[Lease]:
        return self._storage.acquire_lock(
            ttl=None if ttl is True else float(ttl), timeout=None if block else 0
        )


class _LockingTests:
    __test__ = True  # collected under Triggers 2.0's class names

    assertEqual = staticmethod(_CASE.assertEqual)
    assertRaises = staticmethod(_CASE.assertRaises)

    @pytest.fixture(autouse=True)
    def _backend(self, make_storage: Callable[[str], TriggerStorageBackend]) -> Iterator[None]:
        global _factory
        _factory = make_storage
        yield
        _factory = None

    def _require_shared_locks(self) -> None:
        """Skip on a backend whose locks do not reach other processes."""
        probe = _storage_for("capabilities")
        if not probe.capabilities.cross_process_locking:
            pytest.skip(
                f"{type(probe).__name__} keeps its sessions and locks in one process "
                "(capabilities.cross_process_locking is False); Triggers 2.0 ran this on Redis"
            )


class AcquireLockTestCase(_LockingTests):
    def test_threads_blocking(self) -> None:
        """Threads take turns at a blocking lock."""
        hits: list[str] = []
        total: list[str] = []

        def maybe_hit() -> None:
            with acquire_lock(key="test", ttl=3600):
                if not hits:
                    hits.append(current_thread().name)

            total.append(current_thread().name)

        threads = [Thread(target=maybe_hit) for _ in range(20)]

        for t in threads:
            t.start()

        for t in threads:
            t.join()

        self.assertEqual(len(hits), 1)
        self.assertEqual(len(total), 20)

    def test_threads_non_blocking(self) -> None:
        """Threads that do not wait for a lock: those that find it taken give up."""
        hits: list[str] = []
        total: list[str] = []

        def maybe_hit() -> None:
            try:
                with acquire_lock(key="test", ttl=3600, block=False):
                    if not hits:
                        hits.append(current_thread().name)
            except LockAcquisitionFailed:
                # How many threads get here cannot be known.
                pass

            total.append(current_thread().name)

        threads = [Thread(target=maybe_hit) for _ in range(20)]

        for t in threads:
            t.start()

        for t in threads:
            t.join()

        self.assertEqual(len(hits), 1)
        self.assertEqual(len(total), 20)

    def test_processes_blocking(self) -> None:
        """Processes take turns at a blocking lock."""
        self._require_shared_locks()
        context = multiprocessing.get_context("fork")  # maybe_hit is a closure
        manager = context.Manager()
        hits = manager.list()
        total = manager.list()

        def maybe_hit() -> None:
            with acquire_lock(key="test", ttl=3600):
                if not hits:
                    hits.append(context.current_process().ident)

            total.append(context.current_process().ident)

        processes = [context.Process(target=maybe_hit) for _ in range(0, 20)]

        for p in processes:
            p.start()

        for p in processes:
            p.join()

        self.assertEqual(len(hits), 1)
        self.assertEqual(len(total), 20)
        manager.shutdown()

    def test_processes_non_blocking(self) -> None:
        """Processes that do not wait for a lock: those that find it taken give up."""
        self._require_shared_locks()
        context = multiprocessing.get_context("fork")
        manager = context.Manager()
        hits = manager.list()
        total = manager.list()

        def maybe_hit() -> None:
            try:
                with acquire_lock(key="test", ttl=3600, block=False):
                    if not hits:
                        hits.append(context.current_process().ident)
            except LockAcquisitionFailed:
                # How many processes get here cannot be known.
                pass

            total.append(context.current_process().ident)

        processes = [context.Process(target=maybe_hit) for _ in range(20)]

        for p in processes:
            p.start()

        for p in processes:
            p.join()

        self.assertEqual(len(hits), 1)
        self.assertEqual(len(total), 20)
        manager.shutdown()


class LockableTestCase(_LockingTests):
    def test_acquire_multiple(self) -> None:
        """An object that holds the lock may take it again; another object may not."""

        class Locker(Lockable):
            def get_lock_name(self) -> str:
                return "test"

        locker_1 = Locker()
        locker_2 = Locker()

        # Non-blocking, so that a bug fails the test instead of hanging it.
        with locker_1.acquire_lock(block=False):
            with locker_1.acquire_lock(block=False):
                pass

            # Leaving the inner block did not release the outer one.
            with self.assertRaises(LockAcquisitionFailed), locker_2.acquire_lock(block=False):
                pass

    def test_thread_safety(self) -> None:
        """One object shared by threads: its lock excludes them from each other.

        Only the lock is thread-safe, not whatever else the object holds.
        """

        class Locker(Lockable):
            hits: list[str] = []
            total: list[str] = []

            def maybe_hit(self) -> None:
                with self.acquire_lock(ttl=3600):
                    if not self.hits:
                        self.hits.append(current_thread().name)

                self.total.append(current_thread().name)

            def get_lock_name(self) -> str:
                return "test"

        # One object, many threads.
        locker = Locker()

        threads = [Thread(target=locker.maybe_hit) for _ in range(20)]

        for t in threads:
            t.start()

        for t in threads:
            t.join()

        self.assertEqual(len(locker.hits), 1)
        self.assertEqual(len(locker.total), 20)
