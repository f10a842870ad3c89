"""Sessions of a Django project: storage and manager from ``settings.TRIGGERS``,
and fires that wait for the database transaction to commit.

Why ``fire_on_commit``: Triggers' state lives in its own store (even when
that store is the project's database, the storage uses its own connections),
so a fire made inside ``transaction.atomic()`` is saved at once and is not
rolled back with the block. If the block then fails, the session says a task
ran (or was scheduled) for rows that were never committed.
``fire_on_commit`` hands the fire to ``transaction.on_commit``: it happens
after the block commits, and never if it rolls back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.db import transaction

from triggers import values
from triggers.manager import TriggerManager
from triggers.registry import manager_from_config, storage_from_config
from triggers.storage import TriggerStorageBackend
from triggers_django.conf import triggers_settings

__all__ = ["fire_on_commit", "get_manager", "get_storage"]


def get_storage(uid: str) -> TriggerStorageBackend:
    """The storage of session ``uid`` as ``settings.TRIGGERS["STORAGE"]`` selects it.

    Cheap to call per request: backends share one connection pool per
    process, so this opens nothing of its own.
    """
    return storage_from_config(uid, triggers_settings().storage_config())


def get_manager(uid: str) -> TriggerManager:
    """The trigger manager of session ``uid``, with the settings' runner and manager."""
    settings = triggers_settings()
    storage = storage_from_config(uid, settings.storage_config())
    return manager_from_config(storage, settings.manager_config())


def fire_on_commit(
    uid: str,
    trigger_name: str,
    trigger_kwargs: Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    using: str | None = None,
    robust: bool = False,
) -> None:
    """Fire ``trigger_name`` into session ``uid`` once the current transaction commits.

    Outside an atomic block (autocommit) the fire happens at once, as
    Django's ``on_commit`` does. ``using`` names the database whose
    transaction to wait for; ``robust=True`` (Django 4.2+) logs an error of
    the fire instead of raising it from the commit. The kwargs are checked
    now, so bad input fails at the call, not after the commit.
    """
    manager = get_manager(uid)
    where = f"session {uid!r} trigger {trigger_name!r} kwargs"
    if trigger_kwargs is not None and not isinstance(trigger_kwargs, Mapping):
        raise TypeError(f"{where} must be a mapping, not {type(trigger_kwargs).__name__}")
    # Encoded now, as the fire will store them: bad values fail here, not at commit.
    checked = values.decode(values.encode(dict(trigger_kwargs or {}), where, depth=1))

    def fire() -> None:
        try:
            manager.fire(trigger_name, checked, idempotency_key=idempotency_key)
        finally:
            manager.storage.close()

    callback: Callable[[], None] = fire
    transaction.on_commit(callback, using=using, robust=robust)
