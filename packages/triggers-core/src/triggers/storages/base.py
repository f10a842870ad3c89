"""Triggers 2.0's ``triggers.storages.base``: aliases for ported code.

``BaseTriggerStorage`` is :class:`triggers.storage.TriggerStorageBackend`: a
custom backend written for Triggers 2.0 subclasses it and implements the same
two methods, ``_load_from_backend()`` and ``_save()``. ``storage_backends`` is
:data:`triggers.registry.storage_backends`.

Triggers 2.0's ``TaskInstanceCollection`` (the dict subclass behind
``storage.instances``) has no alias: ``storage.instances`` is a read-only
mapping here, and ``storage.instances_of_task(task)`` returns the list that
``instances.get_from_task(task)`` returned as a dict.
"""

from __future__ import annotations

from triggers.registry import storage_backends
from triggers.storage import TriggerStorageBackend

__all__ = ["BaseTriggerStorage", "storage_backends"]

BaseTriggerStorage = TriggerStorageBackend
"""The base class of storage backends, under its Triggers 2.0 name."""
