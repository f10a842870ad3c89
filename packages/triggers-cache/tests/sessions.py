"""Sessions with history, built and read the way the library's users do, for the cache tests."""

from __future__ import annotations

import uuid
from typing import Any

from triggers.manager import TriggerManager
from triggers.types import InstanceStatus
from triggers_cache import CacheStorageBackend
from triggers_cache.codec import Head
from triggers_cache.layout import RECENT_LIMIT  # noqa: F401  (re-exported for the tests)
from triggers_cache.store_chain import ChainStore

NOOP = "triggers_conformance.tasks.noop"
TASKS: dict[str, dict[str, Any]] = {
    "t_page": {"run": NOOP, "after": ["start"], "andEvery": "page"},
    "t_wait": {"run": NOOP, "after": ["start", "never"]},
}


def prefix() -> str:
    return f"k{uuid.uuid4().hex[:12]}"


class Sessions:
    """Opens sessions of one uid on one cache alias, under a key prefix of the test's own."""

    def __init__(self, alias: str, uid: str = "s", **options: Any) -> None:
        self.alias = alias
        self.uid = uid
        self.options = {"key_prefix": prefix(), **options}

    def open(self, **options: Any) -> CacheStorageBackend:
        return CacheStorageBackend(self.uid, cache=self.alias, **{**self.options, **options})

    def head(self) -> Head:
        head = self.open().store.load().head
        assert head is not None, "the session has no head"
        return head

    def head_key(self) -> str:
        """The key of the head document (on chained caches, of the latest head, not the pointer)."""
        storage = self.open()
        if isinstance(storage.store, ChainStore):
            head = self.head()
            return storage.keys.chained_head(head.epoch, head.version)
        return storage.keys.head

    def build(self, *, finished: int = 0, fires: int = 0) -> CacheStorageBackend:
        """Configured, started, ``finished`` instances saved at once, then ``fires`` eager fires."""
        storage = self.open()
        manager = TriggerManager(storage)
        manager.update_configuration(TASKS)
        manager.fire("start")
        if finished:
            with storage.acquire_lock():
                for n in range(finished):
                    storage.create_instance(
                        "t_page", status=InstanceStatus.FINISHED, kwargs={"page": {"n": n}}
                    )
                storage.save()
        for n in range(fires):
            manager.fire("page", {"n": f"fire {n}"})
        return storage


def page_numbers(storage: CacheStorageBackend) -> list[Any]:
    """The ``n`` each finished ``t_page`` instance was fired with, in instance order."""
    return [
        instance.kwargs.get("page", {}).get("n")
        for instance in storage.instances_of_task("t_page")
        if instance.status is InstanceStatus.FINISHED
    ]
