"""Sessions never see each other's data, whatever their uids look like."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee
from triggers_conformance.processes import start_child

Reload = Callable[[str], TriggerStorageBackend]

FORK_LOADS = 300
"""Loads each side makes in the fork test: enough to interleave on a shared socket."""

ODD_UIDS = {
    "path": "a/b/../c",
    "sql": "x'; DROP TABLE sessions; --",
    "mongo": "$where.a",
    "dynamodb": "#pk = :v",
    "cache_key": "key with spaces:and:colons\n",
    "unicode": "sesja-żółw-🐢",
    "wildcard": "%_*?",
    "nul": "a\x00b",
}


class IsolationTests(ConformanceBase):
    @guarantee("isolation")
    @pytest.mark.parametrize("kind", sorted(ODD_UIDS))
    def test_odd_uids_are_isolated(self, make_storage: StorageFactory, reload: Reload, kind: str) -> None:
        suffix = uuid.uuid4().hex[:8]
        uid = f"{ODD_UIDS[kind]}{suffix}"
        neighbour = f"{ODD_UIDS[kind]}{suffix}x"
        for session, value in ((uid, "mine"), (neighbour, "theirs")):
            backend = make_storage(session)
            with backend.acquire_lock():
                backend.metadata["owner"] = value
                backend.save()
            backend.close()
        assert reload(uid).metadata == {"owner": "mine"}
        assert reload(neighbour).metadata == {"owner": "theirs"}
        assert reload(uid + "y").metadata == {}

    @guarantee("isolation")
    def test_sessions_do_not_share_instances_or_counters(
        self, make_storage: StorageFactory, uid: str, reload: Reload
    ) -> None:
        for session in (uid, uid + "-other"):
            backend = make_storage(session)
            with backend.acquire_lock():
                backend.update_configuration({"t_a": self.task("noop", after=["x"])})
                backend.create_instance("t_a", kwargs={"x": {"session": session}})
                backend.save()
            backend.close()
        assert [i.name for i in reload(uid)] == ["t_a#0"]
        assert reload(uid + "-other")["t_a#0"].kwargs == {"x": {"session": uid + "-other"}}
        assert reload(uid)["t_a#0"].kwargs == {"x": {"session": uid}}

    @guarantee("isolation")
    def test_empty_and_non_text_uids_are_refused_alike(self, make_storage: StorageFactory) -> None:
        with pytest.raises(ValueError, match="empty"):
            make_storage("")
        with pytest.raises(ValueError, match="surrogate"):
            make_storage("bad\ud800uid")
        with pytest.raises(TypeError, match="str"):
            make_storage(42)  # type: ignore[arg-type]

    @guarantee("isolation")
    def test_names_differing_only_in_case_space_or_normalization_are_distinct(
        self, make_storage: StorageFactory, reload: Reload
    ) -> None:
        """Case-insensitive or space-padding collations and Unicode normalization
        must not merge what the application keeps apart."""
        suffix = uuid.uuid4().hex[:8]
        variants = ["Ab", "ab", "ab ", "\u00e9", "e\u0301", "ab\t"]
        for variant in variants:
            backend = make_storage(suffix + variant)
            with backend.acquire_lock():
                backend.metadata["uid"] = variant
                backend.save()
            backend.close()
        for variant in variants:
            assert reload(suffix + variant).metadata == {"uid": variant}

        backend = make_storage(suffix)
        with backend.acquire_lock():
            backend.update_configuration(
                {f"t_{variant}": self.task("noop", after=[variant]) for variant in variants}
            )
            for variant in variants:
                backend.create_instance(f"t_{variant}", kwargs={variant: {variant: variant}})
                backend.metadata[variant] = variant
            backend.save()
        backend.close()
        fresh = reload(suffix)
        assert sorted(fresh.tasks) == sorted(f"t_{variant}" for variant in variants)
        assert fresh.metadata == {**{v: v for v in variants}, "instanceCounts": {f"t_{v}": 1 for v in variants}}
        for variant in variants:
            assert fresh[f"t_{variant}#0"].kwargs == {variant: {variant: variant}}

    @guarantee("isolation", requires="shared_state")
    def test_storage_objects_used_before_fork_never_serve_another_session(
        self, make_storage: StorageFactory, uid: str
    ) -> None:
        """A pool opened before ``fork()`` is never shared by parent and child.

        Worker pools (gunicorn, Celery prefork) build objects, fork, and use
        them on both sides. Were an inherited connection used by both, each
        process could read the other's replies: session A's data handed to
        the reader of session B. Here a parent and a child load two sessions
        through objects made and used before the fork, at the same time,
        many times: each must only ever see its own.
        """
        owners = {f"{uid}-parent": "parent", f"{uid}-child": "child"}
        for session, owner in owners.items():
            backend = make_storage(session)
            with backend.acquire_lock():
                backend.metadata["owner"] = owner
                backend.save()
            backend.close()
        parent_storage = make_storage(f"{uid}-parent")
        child_storage = make_storage(f"{uid}-child")
        for backend in (parent_storage, child_storage):  # connections open and pooled now
            assert backend.metadata["owner"] in owners.values()
            backend.invalidate_cache()

        def owners_seen(backend: TriggerStorageBackend) -> list[object]:
            seen = []
            for _ in range(FORK_LOADS):
                backend.invalidate_cache()
                seen.append(backend.metadata.get("owner"))
            return seen

        child = start_child(owners_seen, child_storage)
        seen_by_parent = owners_seen(parent_storage)
        seen_by_child = child.result(timeout=120)
        assert set(seen_by_parent) == {"parent"}, f"the parent read: {sorted(set(map(str, seen_by_parent)))}"
        assert set(seen_by_child) == {"child"}, f"the child read: {sorted(set(map(str, seen_by_child)))}"
        parent_storage.close()
        child_storage.close()
