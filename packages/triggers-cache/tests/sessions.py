"""Sessions with history on one cache alias, built and read the way the library's users do."""

from __future__ import annotations

import uuid
from typing import Any

from triggers.types import InstanceStatus
from triggers_cache import CacheStorageBackend
from triggers_conformance.keyvalue import TASKS, KeyValueSessions

__all__ = ["TASKS", "Sessions", "page_numbers", "prefix"]


def prefix() -> str:
    return f"k{uuid.uuid4().hex[:12]}"


class Sessions(KeyValueSessions):
    """Opens sessions of one uid on one cache alias, under a key prefix of the test's own."""

    def __init__(self, alias: str, uid: str = "s", **options: Any) -> None:
        self.alias = alias
        self.options = {"key_prefix": prefix(), **options}
        super().__init__(self._make, uid)

    def _make(self, uid: str, **options: Any) -> CacheStorageBackend:
        return CacheStorageBackend(uid, cache=self.alias, **{**self.options, **options})

    def open(self, **options: Any) -> CacheStorageBackend:
        return self._make(self.uid, **options)


def page_numbers(storage: CacheStorageBackend) -> list[Any]:
    """The ``n`` each finished ``t_page`` instance was fired with, in instance order."""
    return [
        instance.kwargs.get("page", {}).get("n")
        for instance in storage.instances_of_task("t_page")
        if instance.status is InstanceStatus.FINISHED
    ]
