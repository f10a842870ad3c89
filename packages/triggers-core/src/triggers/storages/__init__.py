"""Triggers 2.0's ``triggers.storages`` package, kept so ported code imports unchanged.

Nothing here is new: each name is an alias of the class or registry this
library has under another name (see "Coming from Triggers 2.0" in the
documentation, which also lists the names that could not be kept).

``BaseTriggerStorage``
    :class:`triggers.storage.TriggerStorageBackend`, the base class of backends.
``storage_backends``
    :data:`triggers.registry.storage_backends` (entry-point group
    ``triggers.storage_backends``; Triggers 2.0 used ``triggers.storages``).
``CacheStorageBackend``
    The Django-cache backend, :class:`triggers_cache.CacheStorageBackend`,
    from the ``triggers-cache`` distribution. It is imported only when asked
    for (``from triggers.storages import CacheStorageBackend`` or
    ``triggers.storages.cache``), so this package works without Django; without
    ``triggers-cache`` that import raises an :class:`ImportError` saying what
    to install. It is left out of ``__all__`` so that a star import never
    needs it.
"""

from __future__ import annotations

from typing import Any

from triggers.storages.base import BaseTriggerStorage, storage_backends

__all__ = ["BaseTriggerStorage", "storage_backends"]


def __getattr__(name: str) -> Any:
    if name == "CacheStorageBackend":
        from triggers.storages.cache import CacheStorageBackend

        return CacheStorageBackend
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
