"""Triggers in a Django project (import ``triggers_django``).

``settings.TRIGGERS`` selects the storage, runner and manager; ``get_manager``
and ``get_storage`` build them per session; ``fire_on_commit`` fires after
the database transaction commits; system checks, a migration for the ``sql``
backend's tables, and ``manage.py triggers`` complete it. See the README.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["fire_on_commit", "get_manager", "get_storage"]

if TYPE_CHECKING:
    from triggers_django.sessions import fire_on_commit, get_manager, get_storage


def __getattr__(name: str) -> Any:
    # Lazily, so that importing the package (as INSTALLED_APPS does before
    # the app registry is ready) does not import django.db.
    if name in __all__:
        from triggers_django import sessions

        return getattr(sessions, name)
    raise AttributeError(f"module 'triggers_django' has no attribute {name!r}")
