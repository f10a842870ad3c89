"""Change baselines taken from the stored text, and finished history decoded only when read.

A load keeps each record's stored text (or the canonical JSON of the record
the backend returned) as its change baseline instead of encoding the decoded
object again, and a backend that holds text hands resolved instances over
undecoded (``StoredText``). These tests pin what that must never change:
every change is saved (``True`` -> ``1`` and ``1`` -> ``1.0`` included, all
equal in Python), nothing unchanged is written, the decoded objects are the
same, and undecodable text is a ``CorruptSessionError`` that writes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from core_toy_backends import DictBackend, RecordingMemoryBackend

from triggers import values
from triggers.errors import CorruptSessionError
from triggers.memory import MemoryStorageBackend, _namespace
from triggers.storage import (
    LoadScope,
    SessionChanges,
    StoredSession,
    StoredText,
    TriggerStorageBackend,
)
from triggers.types import InstanceStatus, TaskConfig, TaskInstance

RUN = "core_sample_tasks.name_of_instance"
TASKS = {
    "t_a": {"after": ["start"], "run": RUN},
    "t_b": {"after": ["t_a"], "run": RUN, "withParams": {"t_a": {"flag": True, "n": 1}}},
}
MOMENT = datetime(2024, 5, 6, 7, 8, 9, 123456, tzinfo=UTC)


class ParsedMemoryBackend(RecordingMemoryBackend):
    """The memory backend handing over parsed records, as the SQL, MongoDB and
    DynamoDB backends do (they parse the text they read themselves)."""

    def _load_session(self, scope: LoadScope) -> StoredSession:
        stored = super()._load_session(scope)

        def parsed(records: Any) -> dict[str, Any]:
            return {name: json.loads(record.text) for name, record in records.items()}

        return StoredSession(
            parsed(stored.configs), parsed(stored.instances), parsed(stored.metadata),
            version=stored.version, complete=stored.complete,
        )


class ObjectMemoryBackend(RecordingMemoryBackend):
    """The memory backend handing over built TaskConfig and TaskInstance objects."""

    def _load_session(self, scope: LoadScope) -> StoredSession:
        stored = super()._load_session(scope)
        configs = {name: TaskConfig.from_text(name, record.text) for name, record in stored.configs.items()}
        instances = {
            name: TaskInstance.from_text(name, record.text, configs) for name, record in stored.instances.items()
        }
        metadata = {key: json.loads(value.text) for key, value in stored.metadata.items()}
        return StoredSession(configs, instances, metadata, version=stored.version, complete=stored.complete)


INCREMENTAL: dict[str, type[RecordingMemoryBackend]] = {
    "text": RecordingMemoryBackend,
    "parsed": ParsedMemoryBackend,
    "objects": ObjectMemoryBackend,
}


@pytest.fixture(params=sorted(INCREMENTAL))
def make(request: pytest.FixtureRequest, uid: str, namespace: str) -> Callable[[], RecordingMemoryBackend]:
    """A factory of storage objects on one session, handing records over one way."""
    kind = INCREMENTAL[request.param]
    return lambda: kind(uid, namespace=namespace)


def _populate(storage: TriggerStorageBackend, finished: int = 5) -> None:
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.create_instance("t_a", kwargs={"start": {"flag": True, "n": 1, "x": 1.0, "$k": MOMENT}})
        for number in range(finished):
            instance = storage.create_instance("t_b", kwargs={"t_a": {"n": number}})
            instance.metadata["result"] = {"ok": True, "when": MOMENT}
            instance.status = InstanceStatus.FINISHED
        storage.metadata["session"] = {"flag": True, "n": 1, "x": 1.0, "when": MOMENT}
        storage.save()


# --- every change is saved; nothing else is -------------------------------------


TYPE_ONLY_CHANGES = [(True, 1), (1, True), (1, 1.0), (1.0, 1), (False, 0), (0, 0.0), (0.0, -0.0)]


@pytest.mark.parametrize(("before", "after"), TYPE_ONLY_CHANGES)
def test_a_change_python_calls_equal_is_saved_everywhere(
    make: Callable[[], RecordingMemoryBackend], before: Any, after: Any
) -> None:
    storage = make()
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.create_instance("t_a", kwargs={"start": {"v": before}}, metadata={"v": before})
        storage.metadata["v"] = {"v": before}
        storage.update_configuration({"t_c": {"after": ["x"], "run": RUN, "withParams": {"x": {"v": before}}}})
        storage.save()

    storage = make()
    with storage.acquire_lock():
        instance = storage["t_a#0"]
        instance.kwargs["start"]["v"] = after
        instance.metadata["v"] = after
        storage.metadata["v"]["v"] = after
        storage.save()
    (changes,) = storage.changes
    assert set(changes.instances) == {"t_a#0"}
    assert set(changes.metadata) == {"v"}

    storage = make()
    with storage.acquire_lock():
        # A config is frozen, but its withParams is a dict that can be changed in place.
        storage.tasks["t_c"].with_params["x"]["v"] = after  # type: ignore[index]
        storage.save()
    assert set(storage.changes[0].configs) == {"t_c"}

    fresh = make()
    for got in (fresh["t_a#0"].kwargs["start"]["v"], fresh["t_a#0"].metadata["v"],
                fresh.metadata["v"]["v"], fresh.tasks["t_c"].with_params["x"]["v"]):
        assert type(got) is type(after)
        assert repr(got) == repr(after)


def test_a_config_changed_in_place_from_empty_withparams_is_saved(make: Callable[[], RecordingMemoryBackend]) -> None:
    storage = make()
    _populate(storage)
    storage = make()
    with storage.acquire_lock():
        assert storage.tasks["t_a"].with_params == {}
        storage.tasks["t_a"].with_params["start"] = {"added": 1}  # type: ignore[index]
        storage.save()
    (changes,) = storage.changes
    assert set(changes.configs) == {"t_a"}
    assert make().tasks["t_a"].with_params == {"start": {"added": 1}}


def test_loading_and_saving_without_a_change_writes_nothing(make: Callable[[], RecordingMemoryBackend]) -> None:
    storage = make()
    _populate(storage)
    storage = make()
    with storage.acquire_lock():
        assert len(storage.instances) == 6
        for instance in storage.instances.values():
            assert instance.kwargs
        storage.metadata["session"] = dict(storage.metadata["session"])  # same value, new object
        storage.update_configuration({"t_a": TASKS["t_a"]})  # same config, new object
        storage.save()
    assert storage.changes == []


def test_a_changed_instance_is_the_only_one_saved_even_after_a_full_read(
    make: Callable[[], RecordingMemoryBackend],
) -> None:
    storage = make()
    _populate(storage)
    storage = make()
    with storage.acquire_lock():
        assert [i.name for i in storage] == ["t_a#0", *(f"t_b#{n}" for n in range(5))]
        storage["t_b#3"].metadata["note"] = "read"
        storage.save()
    (changes,) = storage.changes
    assert set(changes.instances) == {"t_b#3"}
    assert changes.configs == {} and changes.metadata == {}


def test_changes_carry_the_canonical_text_of_every_changed_record(make: Callable[[], RecordingMemoryBackend]) -> None:
    storage = make()
    _populate(storage)
    (changes,) = storage.changes
    for records, texts in (
        (changes.configs, changes.config_texts),
        (changes.instances, changes.instance_texts),
        (changes.metadata, changes.metadata_texts),
    ):
        assert set(texts) == set(records)
        assert texts == {name: values.canonical_json(record) for name, record in records.items()}


def test_changes_without_texts_are_still_written(uid: str, namespace: str) -> None:
    """A SessionChanges made elsewhere (without the *_texts) is written as before."""
    storage = MemoryStorageBackend(uid, namespace=namespace)
    with storage.acquire_lock() as lease:
        storage._save_changes(SessionChanges(
            uid, None, 1, lease,
            configs={"t_a": {"after": ["start"], "run": RUN}},
            instances={"t_a#0": {"task": "t_a", "status": "finished", "kwargs": {}, "metadata": {}}},
            metadata={"$$k": {"$datetime": "2024-05-06T07:08:09+00:00"}},
        ))
    fresh = MemoryStorageBackend(uid, namespace=namespace)
    assert fresh["t_a#0"].status is InstanceStatus.FINISHED
    assert fresh.metadata == {"$k": datetime(2024, 5, 6, 7, 8, 9, tzinfo=UTC)}


def test_a_stored_record_in_an_older_form_loads_the_same(uid: str, namespace: str) -> None:
    """An instance's baseline is its stored text, so a save rewrites it in
    today's form (once). A config nothing can change is not even encoded
    again, so it stays as it was, as it always did. Either decodes as ever."""
    storage = ParsedMemoryBackend(uid, namespace=namespace)
    with storage.acquire_lock() as lease:
        storage._save_changes(SessionChanges(
            uid, None, 1, lease,
            configs={"t_a": {"after": ["start", "start"], "run": f" {RUN} ", "unless": []}},
            instances={"t_a#0": {"status": "unstarted"}},
        ))
    storage = ParsedMemoryBackend(uid, namespace=namespace)
    with storage.acquire_lock():
        assert storage.tasks["t_a"].after == ("start",)
        assert storage["t_a#0"].kwargs == {} and storage["t_a#0"].metadata == {}
        storage.save()
    (changes,) = storage.changes
    assert changes.configs == {}
    assert changes.instances == {
        "t_a#0": {"task": "t_a", "status": "unstarted", "kwargs": {}, "metadata": {}}
    }
    storage.changes.clear()
    with storage.acquire_lock():
        storage.metadata  # noqa: B018 - loads
        storage.save()
    assert storage.changes == []


# --- finished history given as text is decoded only when read -------------------


@pytest.fixture
def decodes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The names of the instances decoded from text, in order."""
    seen: list[str] = []
    original = TaskInstance.from_text.__func__  # type: ignore[attr-defined]

    def counting(cls: type[TaskInstance], name: str, text: str, configs: Any) -> TaskInstance:
        seen.append(name)
        return original(cls, name, text, configs)  # type: ignore[no-any-return]

    monkeypatch.setattr(TaskInstance, "from_text", classmethod(counting))
    yield seen


def test_loading_a_whole_session_decodes_no_finished_instance(
    memory_storage: MemoryStorageBackend, decodes: list[str]
) -> None:
    _populate(memory_storage, finished=20)
    storage = MemoryStorageBackend(memory_storage.uid, namespace=memory_storage.namespace)
    assert len(storage.instances) == 21
    assert "t_b#7" in storage.instances and "t_b#99" not in storage.instances
    assert sorted(storage.instances)[:3] == ["t_a#0", "t_b#0", "t_b#1"]
    assert [i.name for i in storage.get_unresolved_instances()] == ["t_a#0"]
    assert [c.name for c in storage.get_unresolved_tasks()] == ["t_a"]
    assert decodes == ["t_a#0"]  # the one active instance, at the load

    assert storage["t_b#7"].kwargs == {"t_a": {"n": 7}}
    assert storage["t_b#7"] is storage.instances["t_b#7"]
    assert decodes == ["t_a#0", "t_b#7"]
    assert len(list(storage.instances.values())) == 21
    assert len(decodes) == 21


def test_a_finished_instance_read_and_changed_is_saved_alone(
    uid: str, namespace: str, decodes: list[str]
) -> None:
    storage = RecordingMemoryBackend(uid, namespace=namespace)
    _populate(storage, finished=20)
    storage.changes.clear()
    with storage.acquire_lock():
        assert len(storage.instances) == 21
        storage["t_b#4"].metadata["logsResolved"] = True
        storage.save()
    (changes,) = storage.changes
    assert set(changes.instances) == {"t_b#4"}
    assert "t_b#4" in decodes and "t_b#5" not in decodes
    fresh = MemoryStorageBackend(uid, namespace=namespace)
    assert fresh["t_b#4"].metadata["logsResolved"] is True
    assert fresh["t_b#5"].metadata["result"] == {"ok": True, "when": MOMENT}


def test_finished_instances_decode_with_the_configs_of_the_moment(memory_storage: MemoryStorageBackend) -> None:
    _populate(memory_storage)
    storage = MemoryStorageBackend(memory_storage.uid, namespace=memory_storage.namespace)
    assert len(storage.instances) == 6
    storage.update_configuration({"t_b": {"after": ["t_a"], "run": RUN, "unless": ["stop"]}})
    assert storage["t_b#2"].config is storage.tasks["t_b"]
    assert storage["t_b#2"].config.unless == ("stop",)


def test_an_undecoded_instance_replaced_by_restore_is_saved(uid: str, namespace: str) -> None:
    storage = RecordingMemoryBackend(uid, namespace=namespace)
    _populate(storage)
    storage.changes.clear()
    with storage.acquire_lock():
        assert len(storage.instances) == 6
        storage.restore_instance("t_b#1", {"task": "t_b", "status": "skipped"})
        storage.save()
    (changes,) = storage.changes
    assert set(changes.instances) == {"t_b#1"}
    assert MemoryStorageBackend(uid, namespace=namespace)["t_b#1"].status is InstanceStatus.SKIPPED


def test_the_instances_mapping_still_acts_as_the_dict_it_was(memory_storage: MemoryStorageBackend) -> None:
    _populate(memory_storage)
    storage = MemoryStorageBackend(memory_storage.uid, namespace=memory_storage.namespace)
    view = storage.instances
    names = ["t_a#0", *(f"t_b#{n}" for n in range(5))]
    assert sorted(view) == names
    assert list(reversed(view)) == list(view)[::-1]
    copied = view.copy()
    assert type(copied) is dict and sorted(copied) == names
    assert dict(view) == copied == view
    assert view.get("t_b#1") is copied["t_b#1"]
    assert view.get("nope") is None
    assert sorted(view.keys()) == names
    assert sorted(name for name, _ in view.items()) == names
    assert all(isinstance(instance, TaskInstance) for instance in view.values())
    assert (view | {}) == copied
    assert "t_b#1" in repr(view)
    with pytest.raises(TypeError):
        view["t_x#0"] = copied["t_a#0"]  # type: ignore[index]


def _plant(uid: str, namespace: str, name: str, text: str) -> StoredText:
    state = _namespace(namespace).sessions[uid]
    state.instances[name] = StoredText(text, resolved=True)
    state.active.discard(name)
    return state.instances[name]


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ('{"task": "t_b", "status": "finished", "metadata": {"$bad": 1}}', "not escaped"),
        ('{"task": "ghost", "status": "finished"}', "ghost"),
        ('{"task": "t_b", "status": "finished", "kwargs": {"t_a": {"when": {"$datetime": "soon"}}}}', "soon"),
        ('{"task": "t_b", "status": "finis', "decoded"),
    ],
)
def test_undecodable_finished_history_is_a_corrupt_session_error_when_read(
    uid: str, namespace: str, text: str, what: str
) -> None:
    storage = RecordingMemoryBackend(uid, namespace=namespace)
    _populate(storage)
    planted = _plant(uid, namespace, "t_b#2", text)
    storage = RecordingMemoryBackend(uid, namespace=namespace)
    with storage.acquire_lock():
        assert len(storage.instances) == 6  # reading the names decodes nothing
        assert storage["t_b#1"].status is InstanceStatus.FINISHED
        with pytest.raises(CorruptSessionError) as caught:
            storage["t_b#2"]
        message = str(caught.value)
        assert repr(uid) in message and "'t_b#2'" in message and what in message
        assert "left untouched" in message
        assert isinstance(caught.value.__cause__, ValueError | TypeError | KeyError | AttributeError)
        with pytest.raises(CorruptSessionError):
            list(storage.instances.values())
        storage["t_b#1"].metadata["note"] = "still saved"
        storage.save()
    (changes,) = storage.changes
    assert set(changes.instances) == {"t_b#1"}
    assert _namespace(namespace).sessions[uid].instances["t_b#2"] is planted


def test_a_corrupt_active_record_still_fails_the_load(uid: str, namespace: str) -> None:
    storage = MemoryStorageBackend(uid, namespace=namespace)
    _populate(storage)
    state = _namespace(namespace).sessions[uid]
    state.instances["t_a#0"] = StoredText('{"task": "t_a", "kwargs": {"$x": 1}}')
    with pytest.raises(CorruptSessionError, match="not escaped"):
        MemoryStorageBackend(uid, namespace=namespace).metadata  # noqa: B018


# --- two-method backends: records as dicts, baselines from them -----------------


@pytest.mark.parametrize(("before", "after"), TYPE_ONLY_CHANGES)
def test_a_two_method_backend_saves_a_change_python_calls_equal(uid: str, before: Any, after: Any) -> None:
    storage = DictBackend(uid)
    with storage.acquire_lock():
        storage.update_configuration(TASKS)
        storage.create_instance("t_a", metadata={"v": before})
        storage.save()
    with storage.acquire_lock():
        storage["t_a#0"].metadata["v"] = after
        storage.save()
    assert storage.saves == 2
    assert repr(DictBackend(uid, store=storage.store)["t_a#0"].metadata["v"]) == repr(after)
    with storage.acquire_lock():
        assert len(storage.instances) == 1
        storage.save()
    assert storage.saves == 2
