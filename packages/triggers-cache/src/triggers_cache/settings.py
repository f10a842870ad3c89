"""Using Django caches from a plain script: :func:`configure`.

Inside a Django project the backend uses the project's ``CACHES`` as they are.
A script, worker or test that has no Django project calls :func:`configure`
once, before the first session is opened.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["DEFAULT_CACHES", "configure"]

DEFAULT_CACHES: dict[str, dict[str, Any]] = {
    "default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}
}
"""A process-local cache: enough to try things, not to share sessions."""


def configure(
    caches: Mapping[str, Mapping[str, Any]] | None = None,
    databases: Mapping[str, Mapping[str, Any]] | None = None,
) -> bool:
    """Configure Django with ``caches`` (and ``databases``, for ``DatabaseCache``).

    Does nothing and returns False when Django settings are already
    configured (a Django project, or an earlier call): the project's own
    settings always win. Returns True when it configured them.

    >>> configure({"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
    ...                        "LOCATION": "redis://127.0.0.1:6379"}})  # doctest: +SKIP
    """
    import django
    from django.conf import settings

    if settings.configured:
        return False
    settings.configure(
        CACHES={alias: dict(config) for alias, config in (caches or DEFAULT_CACHES).items()},
        DATABASES={alias: dict(config) for alias, config in (databases or {}).items()},
        INSTALLED_APPS=[],
        USE_TZ=True,
    )
    django.setup()
    return True
