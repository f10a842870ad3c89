"""The key-value layout's own rules, on any :class:`~triggers.keyvalue.KeyValueStore`.

:class:`BackendConformance` checks what every backend promises; this class
checks what the layout of :mod:`triggers.keyvalue` adds, by looking at the
keys a store holds and taking them away as a cache under memory pressure
would::

    class TestMyStoreLayout(KeyValueConformance):
        @pytest.fixture
        def make_storage(self):
            return lambda uid, **options: MyStorageBackend(uid, url=URL, **options)

* a fire writes the same bytes whatever the length of the session's history;
* history folds into index documents and reads back whole, newest copies winning;
* any one key lost (the head, its pointer, a segment, an index, the lock)
  never brings old state back and never wedges the session;
* a saver that dies between its writes leaves the last whole state;
* a value that is not what the layout stored is a clear error naming the uid,
  and is left as it is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest

from triggers.errors import CorruptSessionError, SessionLostError, StaleSessionError
from triggers.keyvalue import KeyValueStorageBackend, KeyValueStore, Loaded, Plan, SessionKeys
from triggers.keyvalue.codec import Head
from triggers.keyvalue.layout import RECENT_LIMIT
from triggers.manager import TriggerManager
from triggers.types import InstanceStatus
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee

__all__ = ["KeyValueConformance", "KeyValueSessions"]

NOOP = "triggers_conformance.tasks.noop"
TASKS: dict[str, dict[str, Any]] = {
    "t_page": {"run": NOOP, "after": ["start"], "andEvery": "page"},
    "t_wait": {"run": NOOP, "after": ["start", "never"]},
}
FIRES = RECENT_LIMIT + 4
"""Enough fires for an index document and a few recent segments."""


class KeyValueSessions:
    """Opens one session (a uid) of a key-value backend, and builds it with history."""

    def __init__(self, make: StorageFactory, uid: str) -> None:
        self.make = make
        self.uid = uid

    def open(self) -> KeyValueStorageBackend:
        storage = self.make(self.uid)
        assert isinstance(storage, KeyValueStorageBackend), "make_storage must build a KeyValueStorageBackend"
        return storage

    @property
    def store(self) -> KeyValueStore:
        return self.open().store

    @property
    def keys(self) -> SessionKeys:
        return self.store.keys_for(self.uid)

    def head(self) -> Head:
        head = self.store.heads.load(self.uid, self.keys).head
        assert head is not None, "the session has no head"
        return head

    def head_key(self) -> str:
        """The key of the latest head document (on a chain of heads, not the pointer)."""
        return self.store.heads.head_key(self.keys, self.head())

    def build(self, *, finished: int = 0, fires: int = 0) -> KeyValueStorageBackend:
        """Configured, started, ``finished`` instances saved at once, then ``fires`` eager fires."""
        storage = self.open()
        manager = TriggerManager(storage)
        manager.update_configuration(TASKS)
        manager.fire("start")
        if finished:
            with storage.acquire_lock():
                for n in range(finished):
                    storage.create_instance("t_page", status=InstanceStatus.FINISHED, kwargs={"page": {"n": n}})
                storage.save()
        for n in range(fires):
            manager.fire("page", {"n": f"fire {n}"})
        return storage

    def fire(self, *pages: str) -> None:
        manager = TriggerManager(self.open())
        for page in pages:
            manager.fire("page", {"n": page})

    def pages(self) -> list[Any]:
        """The ``n`` each finished ``t_page`` instance was fired with, in instance order."""
        return [
            instance.kwargs.get("page", {}).get("n")
            for instance in self.open().instances_of_task("t_page")
            if instance.status is InstanceStatus.FINISHED
        ]


class _Recorder:
    """Records every plan a store's heads write, then writes it."""

    def __init__(self, heads: Any) -> None:
        self.heads = heads
        self.plans: list[Plan] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self.heads, name)

    def write(self, uid: str, keys: SessionKeys, base: Loaded, plan: Plan, lease: Any) -> Loaded:
        self.plans.append(plan)
        written: Loaded = self.heads.write(uid, keys, base, plan, lease)
        return written

    @property
    def bytes(self) -> int:
        texts = [plan.text for plan in self.plans]
        texts += [doc for plan in self.plans for doc in plan.documents.values()]
        return sum(len(text.encode("utf-8")) for text in texts)


class SaverDied(ConnectionError):
    """What a saver killed between its writes leaves behind, raised in its place."""


class KeyValueConformance(ConformanceBase):
    """Subclass with a ``make_storage`` fixture building a :class:`KeyValueStorageBackend`."""

    @pytest.fixture
    def sessions(self, make_storage: StorageFactory, uid: str) -> KeyValueSessions:
        return KeyValueSessions(make_storage, uid)

    @pytest.fixture
    def other_sessions(self, make_storage: StorageFactory, uid: str) -> Callable[[str], KeyValueSessions]:
        return lambda name: KeyValueSessions(make_storage, f"{uid}-{name}")

    # -- the layout's cost and shape ------------------------------------------------

    def test_a_fire_writes_the_same_bytes_whatever_the_length_of_the_history(
        self, other_sessions: Callable[[str], KeyValueSessions], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def bytes_per_fire(sessions: KeyValueSessions, finished: int) -> tuple[int, int]:
            storage = sessions.build(finished=finished, fires=1)
            recorder = _Recorder(storage.store.heads)
            with monkeypatch.context() as patch:
                patch.setattr(storage.store, "heads", recorder)
                manager = TriggerManager(storage)
                for n in range(3):
                    manager.fire("page", {"n": f"counted {n}"})
            return recorder.bytes, len(recorder.plans)

        small, small_saves = bytes_per_fire(other_sessions("small"), finished=10)
        large, large_saves = bytes_per_fire(other_sessions("large"), finished=2000)
        assert small_saves == large_saves == 6  # two saves per eager fire
        # The same documents (both histories fit one segment), but for the
        # digits of the instance numbers (#13 or #2003).
        assert abs(large - small) <= 6 * 8, (small, large)

    def test_segments_fold_into_index_documents_and_read_back_in_order(self, sessions: KeyValueSessions) -> None:
        fires = RECENT_LIMIT * 2 + 3
        sessions.build(fires=fires)
        head = sessions.head()
        assert head.index is not None  # 35 segments: two index documents and 3 recent
        assert len(head.recent) == 3
        assert sessions.pages() == [f"fire {n}" for n in range(fires)]  # each once

    def test_an_instance_changed_after_it_finished_reads_as_changed(self, sessions: KeyValueSessions) -> None:
        storage = sessions.build(finished=3, fires=RECENT_LIMIT)
        with storage.acquire_lock():
            storage["t_page#1"].metadata["note"] = "changed later"
            storage.save()
        assert sessions.open()["t_page#1"].metadata["note"] == "changed later"
        assert "note" not in sessions.open()["t_page#2"].metadata

    def test_only_unfinished_instances_live_in_the_head(self, sessions: KeyValueSessions) -> None:
        sessions.build(finished=5, fires=2)
        assert set(sessions.head().instances) == {"t_wait#0"}  # every t_page instance finished
        assert len(sessions.open().instances) == 5 + 2 + 1

    # -- keys lost ------------------------------------------------------------------

    @staticmethod
    def _started_again(sessions: KeyValueSessions) -> None:
        """The session loads empty; configuring and firing it again shows only the new state."""
        fresh = sessions.open()
        assert fresh.metadata == {} and len(fresh.instances) == 0
        sessions.build(fires=3)
        assert sessions.pages() == ["fire 0", "fire 1", "fire 2"]  # nothing of the old incarnation
        assert sessions.open().instance_count("t_page") == 3

    def test_a_lost_head_loads_empty_and_old_state_never_comes_back(self, sessions: KeyValueSessions) -> None:
        sessions.build(fires=FIRES)
        sessions.store.delete(sessions.head_key())
        self._started_again(sessions)
        sessions.fire("later")
        assert sessions.pages()[-1] == "later"

    def test_a_lost_head_pointer_loads_empty_and_old_heads_are_never_stepped_onto(
        self, sessions: KeyValueSessions
    ) -> None:
        sessions.build(fires=4)
        if sessions.head_key() == sessions.keys.head:
            pytest.skip("this store keeps no pointer apart from the head")
        sessions.store.delete(sessions.keys.head)  # the heads it pointed at stay
        self._started_again(sessions)

    def test_a_session_lost_after_its_first_saves_takes_new_saves(self, sessions: KeyValueSessions) -> None:
        sessions.build()  # two saves: configuration, "start"
        sessions.store.delete(sessions.keys.head)
        self._started_again(sessions)

    @pytest.mark.parametrize("kind", ["segment", "index"])
    def test_lost_history_is_reported_on_full_loads_while_fires_go_on(
        self, sessions: KeyValueSessions, kind: str
    ) -> None:
        sessions.build(fires=FIRES)
        head = sessions.head()
        token = head.recent[0] if kind == "segment" else head.index
        assert token is not None
        sessions.store.delete(sessions.keys.document(token))
        with pytest.raises(SessionLostError, match=rf"session {sessions.uid!r}: .* no longer stored"):
            _ = sessions.open().instances
        sessions.fire("after the loss")  # fires read only the head
        fresh = sessions.open()
        assert fresh.instance_count("t_page") == FIRES + 1
        assert fresh.get_unresolved_instances()[0].name == "t_wait#0"
        with pytest.raises(SessionLostError):
            _ = fresh.instances

    @guarantee("fenced_saves", requires="fenced_saves")
    def test_a_lock_key_lost_under_its_holder_lets_another_in_and_refuses_the_first(
        self, sessions: KeyValueSessions
    ) -> None:
        sessions.build(fires=1)
        holder, other = sessions.open(), sessions.open()
        with holder.acquire_lock():
            holder.metadata["by"] = "first holder"
            holder.store.delete(sessions.keys.lock)
            with other.acquire_lock():
                other.metadata["by"] = "second holder"
                other.save()
            with pytest.raises(StaleSessionError):
                holder.save()
        assert sessions.open().metadata["by"] == "second holder"
        sessions.fire("after")
        assert sessions.pages()[-1] == "after"

    # -- savers dying, values damaged --------------------------------------------------

    @staticmethod
    @contextmanager
    def _dying(store: KeyValueStore, key: str) -> Iterator[None]:
        """``store.set(key, ...)`` fails, as a saver killed before that write would leave it."""
        real = store.set

        def dying(name: str, value: str, ttl: float | None) -> None:
            if name == key:
                raise SaverDied("the saver died here")
            real(name, value, ttl)

        setattr(store, "set", dying)  # noqa: B010 (an instance attribute, for this one store)
        try:
            yield
        finally:
            del store.set

    @pytest.mark.parametrize("crashes", [1, 3])
    def test_saves_go_on_after_savers_died_half_way(self, sessions: KeyValueSessions, crashes: int) -> None:
        sessions.build(fires=1)
        for n in range(crashes):
            storage = sessions.open()
            with self._dying(storage.store, sessions.keys.head):
                try:
                    TriggerManager(storage).fire("page", {"n": f"crash {n}"})
                except Exception as error:
                    assert isinstance(error.__cause__ or error, SaverDied), error
                else:
                    pytest.skip("this store's saves do not move the head with set(): no half way")
            # The next head was added: readers step over the pointer onto it, or not.
            assert sessions.pages()[-1] in (f"crash {n}", "fire 0")
        sessions.fire("after")
        shown = sessions.pages()
        assert shown[0] == "fire 0" and shown[-1] == "after"
        assert len(shown) == len(set(shown))

    @pytest.mark.parametrize(
        ("part", "value", "what"),
        [
            ("head", "not a number", "text that is not a Triggers document"),
            ("head", "triggers-cache/9 head e 1\n{}", "a document of an unknown format"),
            ("head", "triggers-cache/2 head e 1\n{truncated", "a document whose JSON is damaged"),
            ("segment", 'triggers-cache/2 segment e t\n{"uid": "x"}', "a document of another session"),
        ],
    )
    def test_a_damaged_value_is_a_clear_error_naming_the_uid_and_is_left_as_it_is(
        self, sessions: KeyValueSessions, part: str, value: str, what: str
    ) -> None:
        sessions.build(fires=2)
        key = sessions.head_key() if part == "head" else sessions.keys.document(sessions.head().recent[0])
        sessions.store.set(key, value, None)
        with pytest.raises(CorruptSessionError, match=f"session {sessions.uid!r}: the store holds {what}"):
            _ = len(sessions.open().instances)
        assert sessions.store.get(key) is not None
