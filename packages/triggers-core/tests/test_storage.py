from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pytest
from core_toy_backends import (
    BrokenDictBackend,
    DictBackend,
    DriverFailure,
    FakeClock,
    LimitedDictBackend,
    RecordingMemoryBackend,
    ShortUidDictBackend,
    SlowLeaseDictBackend,
)

from triggers.errors import (
    ConfigurationError,
    CorruptSessionError,
    LockNotHeldError,
    SessionLimitError,
    StaleSessionError,
    StorageError,
    ValueDomainError,
)
from triggers.locking import Lease
from triggers.memory import MemoryStorageBackend
from triggers.storage import LoadScope, SessionChanges, StoredSession, TriggerStorageBackend
from triggers.types import InstanceStatus, TaskConfig

RUN = "core_sample_tasks.name_of_instance"
TASKS = {
    "t_a": {"after": ["start"], "run": RUN},
    "t_b": {"after": ["t_a"], "run": RUN},
}


def stored_document(
    tasks: Mapping[str, Any] | None = None,
    instances: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> str:
    return json.dumps(
        {
            "tasks": {"t_a": {"after": ["start"], "run": RUN}} if tasks is None else tasks,
            "instances": instances or {},
            "metadata": metadata or {},
        }
    )


# --- __init_subclass__ --------------------------------------------------------


def test_partial_load_hook_without_a_save_hook_is_refused() -> None:
    with pytest.raises(TypeError, match="LoadsOnly overrides _load_session"):

        class LoadsOnly(TriggerStorageBackend):
            def _load_session(self, scope: LoadScope) -> StoredSession:
                return StoredSession({}, {}, {})


@pytest.mark.parametrize("save_hook", ["_save", "_save_changes"])
def test_partial_load_hook_with_either_save_hook_is_accepted(save_hook: str) -> None:
    def save(self: Any, *args: Any) -> None:
        pass

    def load(self: Any, scope: LoadScope) -> StoredSession:
        return StoredSession({}, {}, {})

    backend = type("Native", (TriggerStorageBackend,), {"_load_session": load, save_hook: save})
    assert issubclass(backend, TriggerStorageBackend)


def test_acquire_hook_without_release_hook_is_refused() -> None:
    with pytest.raises(TypeError, match="_acquire_lease and _release_lease together"):

        class AcquireOnly(DictBackend):
            def _acquire_lease(self, lease: Lease) -> bool:
                return True


def test_release_hook_without_acquire_hook_is_refused() -> None:
    with pytest.raises(TypeError, match="ReleaseOnly must override _acquire_lease and _release_lease"):

        class ReleaseOnly(DictBackend):
            def _release_lease(self, lease: Lease) -> None:
                pass


def test_both_lease_hooks_are_accepted() -> None:
    class NativeLock(DictBackend):
        def _acquire_lease(self, lease: Lease) -> bool:
            return True

        def _release_lease(self, lease: Lease) -> None:
            pass

    assert issubclass(NativeLock, DictBackend)


# --- constructor options ------------------------------------------------------


@pytest.mark.parametrize("uid", [5, None, b"session", ["a"]])
def test_uid_must_be_a_str(uid: Any) -> None:
    with pytest.raises(TypeError, match="uid must be a str"):
        DictBackend(uid)


def test_uid_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="must not be empty"):
        DictBackend("")


def test_uid_with_a_lone_surrogate_is_refused() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        DictBackend("session-\ud800")


@pytest.mark.parametrize("uid", [" ", "a/b", "$x", "a.b", "\x00", "\U0001f600" * 3, "x" * 10_000])
def test_unusual_uids_are_accepted_by_default(uid: str) -> None:
    assert DictBackend(uid).uid == uid


def test_uid_longer_than_the_backend_accepts_is_refused() -> None:
    assert ShortUidDictBackend("12345678").uid == "12345678"
    with pytest.raises(ValueError, match=r"9 characters long.*ShortUidDictBackend accepts at most 8") as caught:
        ShortUidDictBackend("123456789")
    assert "'123456789'" in str(caught.value)


@pytest.mark.parametrize("ttl", [0, -1, -0.5])
def test_lease_ttl_must_be_positive(ttl: float) -> None:
    with pytest.raises(ConfigurationError, match="lease_ttl"):
        DictBackend("u", lease_ttl=ttl)


def test_negative_lock_timeout_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="lock_timeout"):
        DictBackend("u", lock_timeout=-1)


def test_zero_lock_timeout_is_allowed() -> None:
    assert DictBackend("u", lock_timeout=0).lock_timeout == 0.0


def test_lease_shorter_than_the_store_honours_is_refused(uid: str) -> None:
    storage = SlowLeaseDictBackend(uid)
    with (
        pytest.raises(ConfigurationError, match=r"0\.5 s is shorter than this store honours \(1 s\)"),
        storage.acquire_lock(ttl=0.5),
    ):
        pass  # pragma: no cover
    assert not storage.lock_held
    with storage.acquire_lock(ttl=1.0) as lease:
        assert lease.ttl == 1.0


@pytest.mark.parametrize("ttl", [0, 0.0])
def test_zero_lease_ttl_in_acquire_lock_is_refused(uid: str, ttl: float) -> None:
    """A zero ttl is refused at construction; acquire_lock(ttl=0) must not silently
    fall back to the default lease instead (``ttl or self.lease_ttl``)."""
    storage = DictBackend(uid, lease_ttl=30)
    with pytest.raises(ConfigurationError), storage.acquire_lock(ttl=ttl):
        pass


def test_negative_lease_ttl_in_acquire_lock_is_refused(uid: str) -> None:
    storage = DictBackend(uid)
    with pytest.raises(ConfigurationError), storage.acquire_lock(ttl=-1):
        pass  # pragma: no cover


def test_now_is_aware_utc_by_the_injected_clock(uid: str) -> None:
    storage = DictBackend(uid, clock=FakeClock(0.0))
    assert storage.now() == datetime(1970, 1, 1, tzinfo=UTC)
    assert storage.now().tzinfo == UTC


# --- driver errors become StorageError ----------------------------------------


def test_load_failure_becomes_a_storage_error_naming_the_uid(uid: str) -> None:
    storage = BrokenDictBackend(uid, fail_in="load")
    with pytest.raises(StorageError) as caught:
        storage.metadata  # noqa: B018 - the property loads
    error = caught.value
    assert not isinstance(error, CorruptSessionError)
    assert repr(uid) in str(error)
    assert "could not load" in str(error)
    assert "server closed the connection" in str(error)
    assert isinstance(error.__cause__, DriverFailure)


def test_save_failure_becomes_a_storage_error_naming_the_uid(uid: str) -> None:
    store: dict[str, str] = {}
    storage = BrokenDictBackend(uid, fail_in="save", store=store)
    with pytest.raises(StorageError, match=f"could not save session {uid!r}") as caught, storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.save()
    assert isinstance(caught.value.__cause__, DriverFailure)
    assert store == {}
    assert not storage.lock_held


def test_triggers_errors_from_hooks_pass_unchanged(uid: str) -> None:
    class Refusing(DictBackend):
        def _save(self) -> None:
            raise StaleSessionError("refused by the store")

    storage = Refusing(uid)
    with pytest.raises(StaleSessionError, match=r"^refused by the store$"), storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.save()


def test_lease_hook_failure_becomes_a_storage_error(uid: str) -> None:
    class FlakyLock(DictBackend):
        def _acquire_lease(self, lease: Lease) -> bool:
            raise OSError("lock server down")

        def _release_lease(self, lease: Lease) -> None:
            pass

    storage = FlakyLock(uid)
    with pytest.raises(StorageError, match="could not acquire the lock") as caught, storage.acquire_lock():
        pass  # pragma: no cover
    assert isinstance(caught.value.__cause__, OSError)


# --- undecodable stored data becomes CorruptSessionError ----------------------


@pytest.mark.parametrize(
    ("document", "what"),
    [
        (
            stored_document(instances={"t_a#0": {"task": "t_a", "status": "exploded", "kwargs": {}, "metadata": {}}}),
            "exploded",
        ),
        (stored_document(metadata={"$x": 1}), "not escaped"),
        (stored_document(metadata={"nested": {"ok": {"$x": 1}}}), "not escaped"),
        (stored_document(metadata={"when": {"$datetime": "yesterday"}}), "yesterday"),
        (stored_document(tasks={"t_a": {"run": RUN}}), "'after'"),
        (stored_document(instances={"ghost#0": {"task": "ghost", "status": "finished"}}), "ghost"),
        (stored_document(instances={"t_a#0": {"task": "t_a", "kwargs": {"start": 5}}}), "decoded"),
        (stored_document(tasks=["not", "a", "mapping"]), "decoded"),
    ],
)
def test_undecodable_stored_data_is_a_corrupt_session_error(uid: str, document: str, what: str) -> None:
    store = {uid: document}
    storage = DictBackend(uid, store=store)
    with pytest.raises(CorruptSessionError) as caught:
        storage.instances  # noqa: B018 - the property loads
    error = caught.value
    assert isinstance(error, StorageError)
    assert repr(uid) in str(error)
    assert what in str(error)
    assert isinstance(error.__cause__, ValueError | TypeError | KeyError | AttributeError)
    assert store == {uid: document}


def test_corrupt_session_leaves_no_half_loaded_state(uid: str) -> None:
    store = {uid: stored_document(metadata={"good": 1, "$bad": 2})}
    storage = DictBackend(uid, store=store)
    with pytest.raises(CorruptSessionError):
        storage.metadata  # noqa: B018
    store[uid] = stored_document(metadata={"good": 1})
    assert storage.metadata == {"good": 1}


def test_corrupt_session_inside_the_lock_writes_nothing(uid: str) -> None:
    document = stored_document(metadata={"$bad": 2})
    store = {uid: document}
    storage = DictBackend(uid, store=store)
    with pytest.raises(CorruptSessionError), storage.acquire_lock():
        storage.metadata["x"] = 1
        storage.save()  # pragma: no cover
    assert store == {uid: document}
    assert storage.saves == 0


# --- the lock: saves need it, failures inside it discard changes ---------------


def test_save_outside_the_lock_is_refused(uid: str) -> None:
    storage = DictBackend(uid)
    storage.update_configuration(TASKS)
    with pytest.raises(LockNotHeldError, match="cannot save without holding the lock"):
        storage.save()
    assert storage.store == {}


def test_exception_inside_the_lock_discards_unsaved_changes(memory_storage: MemoryStorageBackend) -> None:
    storage = memory_storage
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.create_instance("t_a")
        storage.metadata["answer"] = 41
        storage.save()

    with pytest.raises(RuntimeError, match="boom"), storage.acquire_lock():
        storage.metadata["answer"] = 42
        storage.metadata["extra"] = True
        storage["t_a#0"].status = InstanceStatus.FAILED
        storage.create_instance("t_b")
        storage.update_configuration({"t_c": {"after": ["x"], "run": RUN}})
        raise RuntimeError("boom")

    assert storage.metadata["answer"] == 41
    assert "extra" not in storage.metadata
    assert storage["t_a#0"].status is InstanceStatus.UNSTARTED
    assert sorted(storage.instances) == ["t_a#0"]
    assert sorted(storage.tasks) == ["t_a", "t_b"]


def test_exception_inside_the_lock_of_a_two_method_backend_discards_changes(uid: str) -> None:
    storage = DictBackend(uid)
    with storage.acquire_lock():
        storage.metadata["answer"] = 41
        storage.save()
    with pytest.raises(KeyError), storage.acquire_lock():
        storage.metadata["answer"] = 42
        raise KeyError("boom")
    assert storage.metadata == {"answer": 41}
    assert storage.saves == 1


def test_error_caught_inside_a_nested_lock_keeps_the_outer_blocks_changes(
    memory_storage: MemoryStorageBackend,
) -> None:
    storage = memory_storage
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.save()

    with storage.acquire_lock():
        storage.metadata["outer"] = 1
        storage.create_instance("t_a")
        with pytest.raises(RuntimeError, match="inner"), storage.acquire_lock():
            storage.metadata["inner"] = 2
            raise RuntimeError("inner")
        assert storage.lock_held
        assert storage.metadata["outer"] == 1
        assert sorted(storage.instances) == ["t_a#0"]
        storage.save()

    fresh = MemoryStorageBackend(storage.uid, namespace=storage.namespace)
    assert fresh.metadata["outer"] == 1
    assert sorted(fresh.instances) == ["t_a#0"]
    # Nothing is undone halfway: what the inner block changed is kept too.
    assert fresh.metadata["inner"] == 2


def test_error_leaving_the_outermost_lock_discards_every_nested_change(
    memory_storage: MemoryStorageBackend,
) -> None:
    storage = memory_storage
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.metadata["answer"] = 41
        storage.save()

    with pytest.raises(RuntimeError, match="inner"), storage.acquire_lock():
        storage.metadata["answer"] = 42
        storage.create_instance("t_a")
        with storage.acquire_lock():
            storage.metadata["inner"] = 2
            raise RuntimeError("inner")

    assert not storage.lock_held
    assert storage.metadata == {"answer": 41}
    assert dict(storage.instances) == {}
    fresh = MemoryStorageBackend(storage.uid, namespace=storage.namespace)
    assert fresh.metadata == {"answer": 41}
    # The lease was given back: another holder gets it without waiting.
    with fresh.acquire_lock(timeout=0):
        pass


# --- size limits --------------------------------------------------------------


def test_oversized_record_is_refused_before_anything_is_written(uid: str) -> None:
    store: dict[str, str] = {}
    storage = LimitedDictBackend(uid, store=store)
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.create_instance("t_a", kwargs={"start": {"blob": "x" * 10}})
        storage.save()
    before = dict(store)
    assert storage.saves == 1

    with pytest.raises(SessionLimitError) as caught, storage.acquire_lock():
        storage.create_instance("t_a", kwargs={"start": {"blob": "x" * 400}})
        storage.save()
    message = str(caught.value)
    assert repr(uid) in message
    assert "instance 't_a#1'" in message
    assert "at most 300" in message
    assert isinstance(caught.value, ValueError)
    assert store == before
    assert storage.saves == 1
    assert sorted(storage.instances) == ["t_a#0"]


def test_record_limit_counts_utf8_bytes(uid: str) -> None:
    storage = LimitedDictBackend(uid)
    with pytest.raises(SessionLimitError), storage.acquire_lock():
        storage.update_configuration(TASKS)
        # 100 characters, 400 bytes in UTF-8.
        storage.create_instance("t_a", kwargs={"start": {"blob": "\U0001f600" * 100}})
        storage.save()
    assert storage.store == {}


# --- what the base computes for an incremental backend -------------------------


@pytest.fixture
def recording(uid: str, namespace: str) -> RecordingMemoryBackend:
    storage = RecordingMemoryBackend(uid, namespace=namespace)
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        for number in range(20):
            instance = storage.create_instance("t_a", kwargs={"start": {"n": number}})
            if number % 2:
                instance.status = InstanceStatus.FINISHED
        storage.metadata["keep"] = {"a": [1, 2]}
        storage.metadata["drop"] = "soon"
        storage.save()
    return storage


def test_first_save_carries_everything(recording: RecordingMemoryBackend) -> None:
    (changes,) = recording.changes
    assert isinstance(changes, SessionChanges)
    assert changes.uid == recording.uid
    assert changes.base_version is None
    assert changes.new_version == 1
    assert set(changes.configs) == {"t_a", "t_b"}
    assert changes.configs["t_a"] == {"after": ["start"], "run": RUN}
    assert set(changes.instances) == {f"t_a#{n}" for n in range(20)}
    assert changes.instances["t_a#3"]["status"] == "finished"
    assert set(changes.metadata) == {"keep", "drop", "instanceCounts"}
    assert changes.deleted_metadata == frozenset()


def test_changing_one_instance_saves_only_that_instance(recording: RecordingMemoryBackend) -> None:
    recording.changes.clear()
    with recording.acquire_lock() as lease:
        assert len(recording.instances) == 20  # a full load, history included
        recording["t_a#7"].metadata["note"] = "looked at"
        recording.metadata["keep"] = {"a": [1, 2]}  # same value, new object
        recording.save()
    (changes,) = recording.changes
    assert set(changes.instances) == {"t_a#7"}
    assert changes.instances["t_a#7"]["metadata"]["note"] == "looked at"
    assert changes.configs == {}
    assert changes.metadata == {}
    assert changes.deleted_metadata == frozenset()
    assert changes.base_version == 1
    assert changes.new_version == 2
    assert changes.lease.token == lease.token


def test_metadata_changes_carry_only_changed_keys_encoded(recording: RecordingMemoryBackend) -> None:
    recording.changes.clear()
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    with recording.acquire_lock():
        recording.metadata["keep"]["a"].append(3)
        recording.metadata["new"] = {"$k": moment}
        recording.save()
    (changes,) = recording.changes
    assert dict(changes.metadata) == {
        "keep": {"a": [1, 2, 3]},
        "new": {"$$k": {"$datetime": "2024-01-01T00:00:00+00:00"}},
    }
    assert changes.instances == {}
    assert changes.configs == {}


def test_deleted_metadata_key_is_reported(recording: RecordingMemoryBackend) -> None:
    recording.changes.clear()
    with recording.acquire_lock():
        del recording.metadata["drop"]
        recording.save()
    (changes,) = recording.changes
    assert changes.deleted_metadata == frozenset({"drop"})
    assert changes.metadata == {}
    assert "drop" not in recording.metadata
    fresh = MemoryStorageBackend(recording.uid, namespace=recording.namespace)
    assert set(fresh.metadata) == {"keep", "instanceCounts"}


def test_replaced_config_is_the_only_config_change(recording: RecordingMemoryBackend) -> None:
    recording.changes.clear()
    with recording.acquire_lock():
        recording.update_configuration({"t_b": {"after": ["t_a"], "run": RUN, "unless": ["stop"]}})
        recording.update_configuration({"t_a": TASKS["t_a"]})  # unchanged
        recording.save()
    (changes,) = recording.changes
    assert set(changes.configs) == {"t_b"}
    assert changes.instances == {}


def test_save_without_changes_calls_no_hook(recording: RecordingMemoryBackend) -> None:
    recording.changes.clear()
    with recording.acquire_lock():
        assert len(recording.instances) == 20
        recording.metadata["keep"] = {"a": [1, 2]}
        recording.save()
    with recording.acquire_lock():
        recording.save()  # nothing even loaded
    assert recording.changes == []


def test_two_method_save_without_changes_calls_no_hook(uid: str) -> None:
    storage = DictBackend(uid)
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.save()
    assert storage.saves == 1
    with storage.acquire_lock():
        assert set(storage.tasks) == {"t_a", "t_b"}
        storage.save()
    assert storage.saves == 1


def test_serialize_of_a_two_method_backend_writes_stored_records(uid: str) -> None:
    storage = DictBackend(uid)
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.create_instance("t_a", kwargs={"start": {"$k": 1}})
        storage.metadata["when"] = moment
        storage.save()
    document = json.loads(storage.store[storage.uid])
    assert document["tasks"]["t_a"] == {"after": ["start"], "run": RUN}
    assert document["instances"]["t_a#0"]["kwargs"] == {"start": {"$$k": 1}}
    assert document["metadata"]["when"] == {"$datetime": "2024-01-01T00:00:00+00:00"}
    fresh = DictBackend(uid, store=storage.store)
    assert fresh.metadata["when"] == moment
    assert fresh["t_a#0"].kwargs == {"start": {"$k": 1}}


# --- instance_count, get_unresolved_tasks, parse_configuration ------------------


def test_instance_count(memory_storage: MemoryStorageBackend) -> None:
    storage = memory_storage
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        assert storage.instance_count("t_a") == 0
        for _ in range(3):
            storage.create_instance("t_a", status="finished")
        storage.save()
    assert storage.instance_count("t_a") == 3
    assert storage.instance_count(storage.tasks["t_a"]) == 3
    assert storage.instance_count("t_b") == 0
    fresh = MemoryStorageBackend(storage.uid, namespace=storage.namespace)
    assert fresh.instance_count("t_a") == 3


def test_instance_count_without_stored_counters_counts_instances(uid: str) -> None:
    """Sessions written before the counters existed (or by hand) are counted."""
    instances = {f"t_a#{n}": {"task": "t_a", "status": "finished"} for n in range(4)}
    storage = DictBackend(uid, store={uid: stored_document(instances=instances)})
    assert storage.instance_count("t_a") == 4
    with storage.acquire_lock():
        assert storage.create_instance("t_a").name == "t_a#4"


def test_get_unresolved_tasks(memory_storage: MemoryStorageBackend) -> None:
    storage = memory_storage
    with storage.acquire_lock():
        storage.update_configuration(
            {
                "t_never": {"after": ["x"], "run": RUN},
                "t_waiting": {"after": ["x"], "run": RUN},
                "t_done": {"after": ["x"], "run": RUN},
                "t_failed": {"after": ["x"], "run": RUN},
            }
        )
        storage.create_instance("t_waiting")
        storage.create_instance("t_done", status="finished")
        storage.create_instance("t_failed", status="failed")
        storage.save()
    names = [config.name for config in storage.get_unresolved_tasks()]
    assert names == ["t_failed", "t_never", "t_waiting"]


def test_parse_configuration_validates_every_task() -> None:
    parsed = TriggerStorageBackend.parse_configuration(TASKS)
    assert set(parsed) == {"t_a", "t_b"}
    assert parsed["t_b"].after == ("t_a",)


def test_parse_configuration_accepts_task_configs() -> None:
    config = TaskConfig.from_mapping("t_a", TASKS["t_a"])
    assert TriggerStorageBackend.parse_configuration({"t_a": config}) == {"t_a": config}


def test_parse_configuration_refuses_a_misnamed_task_config() -> None:
    config = TaskConfig.from_mapping("t_a", TASKS["t_a"])
    with pytest.raises(ConfigurationError, match="task 't_z': TaskConfig is named 't_a'"):
        TriggerStorageBackend.parse_configuration({"t_z": config})


@pytest.mark.parametrize("configuration", [None, ["t_a"], "t_a"])
def test_parse_configuration_refuses_a_non_mapping(configuration: Any) -> None:
    with pytest.raises(ConfigurationError, match="must map task names"):
        TriggerStorageBackend.parse_configuration(configuration)


def test_update_configuration_refuses_the_whole_update_for_one_bad_task(uid: str) -> None:
    storage = DictBackend(uid)
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        with pytest.raises(ConfigurationError, match=r"'t_bad'.*'run'"):
            storage.update_configuration({"t_good": {"after": ["x"], "run": RUN}, "t_bad": {"after": ["x"]}})
        assert set(storage.tasks) == {"t_a", "t_b"}


# --- metadata keys are stored text ---------------------------------------------


def test_metadata_key_with_a_lone_surrogate_is_refused_and_nothing_written(uid: str) -> None:
    storage = DictBackend(uid)
    with storage.acquire_lock():
        storage.metadata["fine"] = 1
        storage.save()
    before = dict(storage.store)

    with pytest.raises(ValueDomainError) as caught, storage.acquire_lock():
        storage.metadata["other"] = 2
        storage.metadata["bad\ud800"] = 1
        storage.save()
    message = str(caught.value)
    assert repr(uid) in message
    assert "metadata key" in message
    assert "lone surrogate" in message
    assert storage.store == before
    assert storage.saves == 1


def test_metadata_key_with_a_lone_surrogate_reaches_no_incremental_save(
    recording: RecordingMemoryBackend,
) -> None:
    recording.changes.clear()
    with pytest.raises(ValueDomainError, match="lone surrogate"), recording.acquire_lock():
        recording.metadata["other"] = 2
        recording.metadata["bad\ud800"] = 1
        recording.save()
    assert recording.changes == []
    fresh = MemoryStorageBackend(recording.uid, namespace=recording.namespace)
    assert "other" not in fresh.metadata


def test_administration_hooks_default_to_no_schema_and_no_listing() -> None:
    assert DictBackend.create_schema(lease_ttl=5) == []
    assert DictBackend.check_schema() == []
    with pytest.raises(NotImplementedError, match="cannot list its sessions"):
        list(DictBackend.session_uids())


def test_memory_backend_lists_the_sessions_of_its_namespace() -> None:
    from triggers import MemoryStorageBackend

    for uid in ("b", "a"):
        with MemoryStorageBackend(uid, namespace="listing") as storage, storage.acquire_lock():
            storage.metadata["k"] = 1
            storage.save()
    MemoryStorageBackend("never-saved", namespace="listing")
    assert list(MemoryStorageBackend.session_uids(namespace="listing", lease_ttl=3)) == ["a", "b"]


# --- top-level metadata keys are escaped like every stored dict key -------------


@pytest.mark.parametrize("backend", ["two-method", "hooks"])
def test_top_level_metadata_keys_that_look_like_tags_round_trip(uid: str, backend: str) -> None:
    keys = ["$set", "$datetime", "$$x", "$", "a.b", ""]

    def make() -> TriggerStorageBackend:
        if backend == "two-method":
            return DictBackend(uid, store=store)
        return MemoryStorageBackend(uid, namespace=uid)

    store: dict[str, str] = {}
    storage = make()
    with storage.acquire_lock():
        storage.metadata.update({key: {key: key} for key in keys})
        storage.save()
    assert make().metadata == {key: {key: key} for key in keys}
    with storage.acquire_lock():
        del storage.metadata["$set"]
        storage.save()
    assert set(make().metadata) == set(keys) - {"$set"}
