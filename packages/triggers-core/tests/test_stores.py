"""The Store layer: one store per (class, options, process), prepared once, and
the one policy by which driver errors are retried and translated."""

from __future__ import annotations

import gc
import multiprocessing
import uuid
from typing import Any

import pytest

from triggers.capabilities import Capabilities
from triggers.errors import ConfigurationError, StorageError
from triggers.locking import Lease
from triggers.memory import MemoryStorageBackend, MemoryStore
from triggers.registry import storage_backends
from triggers.storage import LoadScope, SessionChanges, StoredSession
from triggers.stores import Store, StoreStorageBackend, expiry_due, validated_session_ttl


class DriverHiccup(ConnectionError):
    """A driver error that the same call survives when tried again."""


class CountingStore(MemoryStore):
    """A memory store that counts its preparations and can fail like a driver."""

    driver_errors = (ConnectionError,)

    def __init__(self, *, dsn: str = "mem://user:secret@host/db", **options: Any) -> None:
        super().__init__(**options)
        self.dsn = dsn
        self.prepared = 0
        self.load_failures = 0
        self.write_failures = 0

    def prepare(self) -> None:
        self.prepared += 1

    def describe(self) -> str:
        return self.dsn

    def is_transient(self, error: BaseException) -> bool:
        return isinstance(error, DriverHiccup)

    def load(self, uid: str, scope: LoadScope) -> StoredSession:
        if self.load_failures:
            self.load_failures -= 1
            raise DriverHiccup("connection reset")
        return super().load(uid, scope)

    def write(self, uid: str, changes: SessionChanges) -> None:
        if self.write_failures:
            self.write_failures -= 1
            raise DriverHiccup("connection reset")
        super().write(uid, changes)


class CountingBackend(StoreStorageBackend):
    store_class = CountingStore
    capabilities = CountingStore.capabilities
    store: CountingStore


@pytest.fixture
def namespace() -> str:
    return f"stores-{uuid.uuid4().hex}"


def test_one_store_per_options_and_it_is_prepared_once(namespace: str) -> None:
    first = CountingBackend("a", namespace=namespace)
    second = CountingBackend("b", namespace=namespace, lease_ttl=5)  # common options are the session's
    other = CountingBackend("a", namespace=namespace + "-other")
    assert first.store is second.store
    assert other.store is not first.store
    assert first.store.prepared == 1 and other.store.prepared == 1


def test_a_store_made_on_an_object_lives_as_long_as_a_session_uses_it(namespace: str) -> None:
    class Client:
        """Stands for a driver client the caller passes in."""

    class ClientStore(MemoryStore):
        def __init__(self, *, client: Client, **options: Any) -> None:
            super().__init__(**options)
            self.client = client

    client = Client()
    store = ClientStore.shared(client=client, namespace=namespace)
    assert ClientStore.shared(client=client, namespace=namespace) is store
    assert ClientStore.shared(client=Client(), namespace=namespace) is not store
    del store
    gc.collect()
    fresh = ClientStore.shared(client=client, namespace=namespace)
    assert fresh.client is client


def _store_in_child(queue: Any, namespace: str, parent_store_id: int) -> None:
    store = CountingStore.shared(namespace=namespace)
    queue.put(id(store) != parent_store_id or store.prepared == 0)


def test_a_forked_child_builds_its_own_store(namespace: str) -> None:
    parent = CountingStore.shared(namespace=namespace)
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_store_in_child, args=(queue, namespace, id(parent)))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    assert queue.get(timeout=5) is True


def test_unknown_options_are_refused_by_name(namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="no option named colour"):
        MemoryStorageBackend("a", namespace=namespace, colour="blue")
    with pytest.raises(ConfigurationError, match=r"unknown options \['colour'\]"):
        storage_backends.check_options("memory", "a", namespace=namespace, colour="blue")
    storage_backends.check_options("memory", "a", namespace=namespace, lease_ttl=3)


def test_transient_load_errors_are_retried_and_saves_are_not(namespace: str) -> None:
    storage = CountingBackend("a", namespace=namespace)
    storage.store.load_failures = 2
    storage.transact(lambda: storage.metadata.update(n=1))  # the load failed twice, then worked
    assert storage.store.load_failures == 0

    storage.store.write_failures = 1
    storage.invalidate_cache()
    with pytest.raises(StorageError) as failed, storage.acquire_lock():
        storage.metadata["n"] = 2
        storage.save()
    assert isinstance(failed.value.__cause__, DriverHiccup)
    # The store's own words, where it is (password hidden), and the session.
    assert "could not save session 'a' on mem://user:***@host/db: DriverHiccup" in str(failed.value)
    assert CountingBackend("a", namespace=namespace).metadata == {"n": 1}


def test_administration_uses_the_store_without_preparing_it(namespace: str) -> None:
    MemoryStorageBackend("s1", namespace=namespace).transact(lambda: None)
    writer = MemoryStorageBackend("s2", namespace=namespace)
    writer.transact(lambda: writer.metadata.update(x=1))
    assert list(MemoryStorageBackend.session_uids(namespace=namespace)) == ["s2"]
    assert MemoryStorageBackend.administers("session_uids")
    assert not MemoryStorageBackend.administers("create_schema")
    assert MemoryStorageBackend.capabilities_for(namespace=namespace) == MemoryStorageBackend.capabilities


class NarrowStore(MemoryStore):
    """A configuration that guarantees less than the backend can (like ``sqlite://``)."""

    def __init__(self, *, shared: bool = True, **options: Any) -> None:
        super().__init__(**options)
        if not shared:
            self.capabilities = Capabilities(fenced_saves=True)


class NarrowBackend(StoreStorageBackend):
    store_class = NarrowStore
    capabilities = NarrowStore.capabilities


def test_capabilities_follow_the_store_s_configuration(namespace: str) -> None:
    assert NarrowBackend("a", namespace=namespace).capabilities.optimistic_saves
    narrow = NarrowBackend("a", namespace=namespace + "-n", shared=False)
    assert not narrow.capabilities.optimistic_saves
    assert not NarrowBackend.capabilities_for(namespace=namespace + "-n", shared=False).optimistic_saves
    # Without optimistic saves, transact() takes the lock instead: still one change, saved.
    narrow.transact(lambda: narrow.metadata.update(x=1))
    assert NarrowBackend("a", namespace=namespace + "-n", shared=False).metadata == {"x": 1}


def test_a_store_subclass_must_implement_the_session_operations() -> None:
    class Bare(Store):
        pass

    class BareBackend(StoreStorageBackend):
        store_class = Bare

    storage = BareBackend("a")
    with pytest.raises(NotImplementedError, match="Bare must implement load"):
        _ = storage.metadata
    lease = Lease.new("a", 5, lambda: 0.0)
    with pytest.raises(NotImplementedError, match="take_lease"):
        Bare().take_lease("a", lease)



@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "60"])
def test_session_ttl_is_a_finite_positive_number_or_none(bad: object) -> None:
    with pytest.raises(ConfigurationError, match="session_ttl must be a finite number"):
        validated_session_ttl(bad)
    assert validated_session_ttl(None) is None
    assert validated_session_ttl(60) == 60.0


def test_history_expiry_is_extended_once_half_the_ttl_has_passed() -> None:
    assert not expiry_due(None, 1000.0, None)  # sessions that never expire
    assert expiry_due(None, 1000.0, 60.0)  # never set yet
    assert not expiry_due(1000.0, 1030.0, 60.0)
    assert expiry_due(1000.0, 1030.5, 60.0)


def _store_of_inherited_object(queue: Any, storage: CountingBackend) -> None:
    store = storage.store
    queue.put((id(store), store.prepared))


def test_an_object_made_before_fork_uses_the_child_s_own_store(namespace: str) -> None:
    storage = CountingBackend("a", namespace=namespace)
    parent_store = storage.store
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    child = context.Process(target=_store_of_inherited_object, args=(queue, storage))
    child.start()
    child.join(30)
    assert child.exitcode == 0
    child_store_id, prepared = queue.get(timeout=5)
    assert child_store_id != id(parent_store) and prepared == 1
    assert storage.store is parent_store  # the parent keeps its own
