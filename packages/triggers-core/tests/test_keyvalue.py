"""Key-value stores (``triggers.keyvalue``): keys, the stored text, the save plan, the reference store.

The layout's behaviour on a store (keys lost, savers dying, bytes per fire)
is the conformance suite's ``KeyValueConformance``, run on the reference
store in ``conformance/tests`` and on every cache in triggers-cache.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest

from triggers.errors import (
    ConfigurationError,
    CorruptSessionError,
    SessionLostError,
    StaleSessionError,
)
from triggers.keyvalue import DictStorageBackend, DictStore, KeyValueStore, SessionKeys
from triggers.keyvalue import reference as reference_module
from triggers.keyvalue.codec import OLDER_LAYOUT, Head, decode_head, encode_head
from triggers.keyvalue.layout import RECENT_LIMIT, SEGMENT_BYTES, plan_save
from triggers.locking import Lease
from triggers.manager import TriggerManager
from triggers.storage import SessionChanges

NOOP = "triggers_conformance.tasks.noop"


@pytest.fixture
def namespace() -> str:
    return f"kv-{uuid.uuid4().hex}"


@pytest.mark.parametrize("uid", ["x" * 1000, "with spaces\tand tabs", "ctrl\x00\x7f", "ünï©ødé ✓", "a:b"])
def test_every_uid_gets_short_plain_keys_of_its_own(uid: str) -> None:
    keys = SessionKeys.for_uid("triggers", uid)
    for key in (keys.head, keys.lock, keys.document("0123456789abcdef"), keys.chained_head("e" * 16, 10**6)):
        assert len(key) < 250 and key.isascii() and key.isprintable() and " " not in key
    assert keys != SessionKeys.for_uid("triggers", uid + " ")


@pytest.mark.parametrize("prefix", ["", "has space", "x" * 65, 7])
def test_a_bad_key_prefix_is_refused_by_name(prefix: Any) -> None:
    with pytest.raises(ConfigurationError, match="key_prefix="):
        DictStore(key_prefix=prefix)


def test_the_session_ttl_is_validated_by_its_name() -> None:
    with pytest.raises(ConfigurationError, match=r"session_ttl must be a finite number .* not inf"):
        DictStore(session_ttl=float("inf"))
    assert DictStore(session_ttl=30).history_ttl == 60
    with pytest.raises(ConfigurationError, match="takes no option named timeout"):
        DictStore(timeout=30)


def test_a_head_reads_back_as_written_and_a_foreign_one_names_the_uid() -> None:
    head = Head("e1", 3, {"t": {"run": NOOP}}, {"t#0": {"status": "unstarted"}}, {"m": 1}, ("s1",), "i1", 5.0)
    assert decode_head("u", encode_head("u", head)) == head
    with pytest.raises(CorruptSessionError, match="session 'v': the store holds a document of another session"):
        decode_head("v", encode_head("u", head))
    with pytest.raises(CorruptSessionError, match="session 'u': the store holds bytes that are not UTF-8"):
        decode_head("u", b"\xff\xfe")


def _changes(base: int | None, **instances: dict[str, Any]) -> SessionChanges:
    return SessionChanges("u", base, (base or 0) + 1, None, instances=instances)


def test_a_save_plan_keeps_the_epoch_and_folds_finished_instances_into_history() -> None:
    first = plan_save("u", None, _changes(None, **{"t#0": {"status": "unstarted"}}), now=0, session_ttl=None)
    assert first.head.epoch and not first.documents and first.head.refreshed is None
    head = first.head
    for n in range(RECENT_LIMIT):
        plan = plan_save("u", head, _changes(head.version, **{f"t#{n}": {"status": "finished"}}), now=0,
                         session_ttl=None)
        assert plan.head.epoch == first.head.epoch
        head = plan.head
    assert head.index is not None and head.recent == ()  # 16 segments: folded into an index
    assert set(head.instances) == set()  # t#0 finished with the first of them


def test_a_save_splits_a_large_history_into_segments() -> None:
    big = {f"t#{n}": {"status": "finished", "metadata": {"pad": "x" * 100_000}} for n in range(12)}
    plan = plan_save("u", None, _changes(None, **big), now=0, session_ttl=None)
    assert len(plan.documents) >= 3
    assert all(len(text) <= SEGMENT_BYTES + 200_000 for text in plan.documents.values())


def test_history_expiry_is_extended_once_half_the_session_ttl_has_passed() -> None:
    head = plan_save("u", None, _changes(None, **{"t#0": {"status": "finished"}}), now=1000, session_ttl=100).head
    assert head.refreshed == 1000
    early = plan_save("u", head, _changes(1), now=1040, session_ttl=100)
    assert not early.refresh and early.head.refreshed == 1000
    late = plan_save("u", head, _changes(1), now=1060, session_ttl=100)
    assert late.refresh and late.head.refreshed == 1060


class OlderLayoutStore(DictStore):
    """A dict store whose head key may hold ``old:<version>``, a session of an older layout."""

    def is_older_layout(self, raw: object) -> bool:
        return isinstance(raw, str) and raw.startswith("old:")

    def load_older_layout(self, uid: str, keys: SessionKeys, raw: object) -> Head | None:
        version = int(str(raw)[4:])
        finished = {"t#0": {"task": "t", "status": "finished", "kwargs": {}, "metadata": {}}}
        return Head(OLDER_LAYOUT, version, {"t": {"run": NOOP, "after": ["go"]}}, {}, {},
                    unsegmented=finished, leftovers=(f"{keys.base}:old",))


class OlderLayoutBackend(DictStorageBackend):
    store_class = OlderLayoutStore


def test_a_session_of_an_older_layout_loads_and_its_next_save_converts_it(namespace: str) -> None:
    storage = OlderLayoutBackend("u", namespace=namespace)
    keys = storage.store.keys_for("u")
    storage.store.set(keys.head, "old:4", None)
    storage.store.set(f"{keys.base}:old", "whatever the older layout kept", None)
    assert [i.name for i in storage.instances.values()] == ["t#0"]
    with storage.acquire_lock():
        storage.metadata["converted"] = True
        storage.save()
    assert storage.store.get(f"{keys.base}:old") is None
    again = OlderLayoutBackend("u", namespace=namespace)
    assert again.metadata == {"converted": True} and "t#0" in again
    assert again.store.heads.load("u", keys).head.version == 5  # type: ignore[union-attr]


def test_a_store_says_which_primitive_it_lacks() -> None:
    class Partial(KeyValueStore):
        pass

    with pytest.raises(NotImplementedError, match="Partial must implement get"):
        Partial().load("u", scope=2)  # type: ignore[arg-type]


def test_the_store_api_write_reads_the_head_itself(namespace: str) -> None:
    """Without a session object's loaded head (``write``), the save reads it first, and is fenced."""
    storage = DictStorageBackend("u", namespace=namespace)
    TriggerManager(storage).update_configuration({"t": {"run": NOOP, "after": ["go"]}})
    store, lease = storage.store, Lease.new("u", 30.0, time.time)
    assert store.take_lease("u", lease)
    store.write("u", SessionChanges("u", 1, 2, lease, metadata={"by": "store"}))
    assert DictStorageBackend("u", namespace=namespace).metadata == {"by": "store"}
    with pytest.raises(StaleSessionError, match="the stored version is 2, this writer loaded 1"):
        store.write("u", SessionChanges("u", 1, 2, lease, metadata={"by": "late"}))
    store.release_lease("u", lease)


def test_expired_keys_are_gone_and_a_session_past_its_ttl_loads_empty(
    namespace: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    now = [1000.0]

    class Clock:
        @staticmethod
        def monotonic() -> float:
            return now[0]

    monkeypatch.setattr(reference_module, "time", Clock)
    storage = DictStorageBackend("u", namespace=namespace, session_ttl=10)
    TriggerManager(storage).update_configuration({"t": {"run": NOOP, "after": ["go"]}})
    now[0] += 9
    assert DictStorageBackend("u", namespace=namespace, session_ttl=10).tasks
    now[0] += 2
    assert not DictStorageBackend("u", namespace=namespace, session_ttl=10).tasks


def test_lost_history_is_a_corrupt_session_error() -> None:
    assert issubclass(SessionLostError, CorruptSessionError)


class AnyErrorIsTheDrivers(DictStore):
    driver_errors = (Exception,)


class AnyErrorBackend(DictStorageBackend):
    store_class = AnyErrorIsTheDrivers


def test_a_store_that_cannot_list_its_sessions_says_so_whatever_its_driver_errors(namespace: str) -> None:
    """``NotImplementedError`` is what the command line looks for, never a translated storage error."""
    with pytest.raises(NotImplementedError, match="cannot list its sessions"):
        list(AnyErrorBackend.session_uids(namespace=namespace))
