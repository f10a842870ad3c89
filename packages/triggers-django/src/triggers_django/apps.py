"""The Django app: ``INSTALLED_APPS += ["triggers_django"]``."""

from __future__ import annotations

from django.apps import AppConfig


class TriggersConfig(AppConfig):
    """Registers the system checks; the migration creates the sql backend's tables."""

    name = "triggers_django"
    verbose_name = "Triggers"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from triggers_django import checks  # noqa: F401  (registers the checks)
