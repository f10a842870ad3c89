"""Damaged stored data: a clear error naming the session, and the damage left as it is.

Runs only for backends whose test class provides raw access to its store
(the optional ``raw_store`` fixture, a :class:`~triggers_conformance.damage.RawStore`);
other backends see these tests skipped with the reason :data:`NO_RAW_STORE`.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from triggers.errors import CorruptSessionError, SchemaError, TriggersError
from triggers.manager import TriggerManager
from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.damage import KINDS, RawStore
from triggers_conformance.guarantees import guarantee
from triggers_conformance.processes import start_child

NO_RAW_STORE = "no raw store: define a raw_store fixture (a RawStore) to run this test"
"""The skip reason of the damaged-data tests on a test class without a raw store."""


Outcome = tuple[str, str, str]
"""``(attempt, "triggers <ErrorType>" | "raw <ErrorType>" | "no error", message)``."""


def load_fire_save(open_storage: Callable[[str], TriggerStorageBackend], uid: str) -> list[Outcome]:
    """Load, fire into and save the session; how each attempt failed.

    Shared with the reliability suite's corruption scenario, which runs it in
    a process started after the damage, as the tests here do.
    """

    def load() -> None:
        storage = open_storage(uid)
        _ = storage.metadata, storage.instances

    def fire() -> None:
        TriggerManager(open_storage(uid)).fire("never-fired")

    def save() -> None:
        storage = open_storage(uid)
        with storage.acquire_lock():
            storage.metadata["overwritten"] = True
            storage.save()

    outcomes = []
    for name, attempt in (("load", load), ("fire", fire), ("save", save)):
        try:
            attempt()
        except Exception as error:
            kind = "triggers" if isinstance(error, TriggersError) else "raw"
            outcomes.append((name, f"{kind} {type(error).__name__}", str(error)))
        else:
            outcomes.append((name, "no error", ""))
    return outcomes


def assert_reported(outcomes: list[Outcome], uid: str, *, schema_level: bool) -> None:
    """Every attempt raised the expected Triggers error, saying what was damaged.

    A newer schema version is a ``SchemaError`` saying "schema version";
    anything else a ``CorruptSessionError`` naming the uid.
    """
    expected = SchemaError if schema_level else CorruptSessionError
    for attempt, error, message in outcomes:
        assert error == f"triggers {expected.__name__}", f"{attempt}: {error}: {message}"
        if schema_level:
            assert "schema version" in message, f"{attempt}: {message}"
        else:
            assert repr(uid) in message, f"{attempt}: the error does not name the uid: {message}"


class DamagedDataTests(ConformanceBase):
    @pytest.fixture
    def raw_store(self) -> RawStore | None:
        """Optional: override to return raw access to the store ``make_storage`` uses."""
        return None

    @pytest.mark.parametrize("kind", KINDS)
    @guarantee("damaged_data")
    def test_damaged_session_is_a_clear_error_and_is_left_untouched(
        self, make_storage: StorageFactory, raw_store: RawStore | None, kind: str
    ) -> None:
        if raw_store is None:
            pytest.skip(NO_RAW_STORE)
        uid = f"damaged-{uuid.uuid4().hex[:8]}"
        storage = make_storage(uid)
        with storage.acquire_lock():
            storage.update_configuration({"t_a": self.task("noop", after=["x"])})
            storage.create_instance("t_a", metadata={"n": 1})
            storage.create_instance("t_a", metadata={"n": 2})
            storage.save()
        storage.close()
        before = raw_store.snapshot(uid)
        raw_store.damage(uid, kind)
        damaged = raw_store.snapshot(uid)
        assert damaged != before

        # A process started after the damage: nothing it caches predates it.
        def open_storage(uid: str) -> TriggerStorageBackend:
            return make_storage(uid, lock_timeout=10)

        outcomes = start_child(load_fire_save, open_storage, uid).result(timeout=120)
        schema_level = kind == "foreign_version" and getattr(raw_store, "schema_versions", False)
        assert_reported(outcomes, uid, schema_level=schema_level)
        assert raw_store.snapshot(uid) == damaged, "the damaged data was overwritten"
