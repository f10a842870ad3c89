"""Django's ``DATABASES`` as the ``sql`` backend's SQLAlchemy URL.

``{"backend": "sql", "options": {"database": "default"}}`` stores sessions in
the project's own database: the URL is built from ``DATABASES["default"]``
when the storage is built, so credentials live in one place (Django's
settings, or wherever they read them from). triggers-sql itself knows nothing
of Django; this is the one translation.

| Django ``ENGINE`` | SQLAlchemy URL |
| --- | --- |
| ``django.db.backends.postgresql`` | ``postgresql+psycopg://USER:PASSWORD@HOST:PORT/NAME`` |
| ``django.db.backends.mysql`` | ``mysql+pymysql://USER:PASSWORD@HOST:PORT/NAME`` |
| ``django.db.backends.sqlite3`` | ``sqlite:///NAME`` |

String and number entries of ``OPTIONS`` become query parameters of the URL
(PostgreSQL's ``options``, ``sslmode``, ``connect_timeout``; MySQL's
``charset``...). Other engines are refused by name.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from triggers.errors import ConfigurationError

__all__ = ["DATABASE_OPTION", "resolve_storage_options", "sqlalchemy_url"]

DATABASE_OPTION = "database"
"""The ``sql`` storage option naming a Django database alias instead of a ``url``."""

_DRIVERS = {
    "django.db.backends.postgresql": "postgresql+psycopg",
    "django.contrib.gis.db.backends.postgis": "postgresql+psycopg",
    "django.db.backends.mysql": "mysql+pymysql",
    "django.contrib.gis.db.backends.mysql": "mysql+pymysql",
    "django.db.backends.sqlite3": "sqlite",
}


def sqlalchemy_url(alias: str) -> str:
    """The SQLAlchemy URL of Django's database ``alias`` (from ``settings.DATABASES``)."""
    from django.conf import settings

    try:
        from sqlalchemy.engine import URL
    except ImportError as exc:
        raise ConfigurationError(
            "the sql storage needs triggers-sql: pip install 'triggers-django[sql]' "
            "(or triggers-sql)"
        ) from exc

    databases: Mapping[str, Mapping[str, Any]] = settings.DATABASES
    if alias not in databases:
        raise ConfigurationError(
            f"sql storage option database={alias!r}: settings.DATABASES has no such alias "
            f"(it has {sorted(databases)})"
        )
    database = databases[alias]
    engine = str(database.get("ENGINE", ""))
    driver = _DRIVERS.get(engine)
    if driver is None:
        raise ConfigurationError(
            f"sql storage option database={alias!r}: its ENGINE {engine!r} is not one triggers-sql "
            f"serves (it serves {sorted(set(_DRIVERS))}); pass the storage a 'url' instead"
        )
    name = str(database.get("NAME") or "")
    if driver == "sqlite":
        if not name or name == ":memory:":
            raise ConfigurationError(
                f"sql storage option database={alias!r}: an in-memory SQLite database is private to "
                "one connection; give the database a file NAME"
            )
        return URL.create("sqlite", database=name).render_as_string(hide_password=False)
    query = {
        key: str(value)
        for key, value in (database.get("OPTIONS") or {}).items()
        if isinstance(value, str | int | float) and not isinstance(value, bool)
    }
    port = database.get("PORT")
    url = URL.create(
        driver,
        username=database.get("USER") or None,
        password=database.get("PASSWORD") or None,
        host=database.get("HOST") or None,
        port=int(port) if port not in (None, "") else None,
        database=name or None,
        query=query,
    )
    return url.render_as_string(hide_password=False)


def resolve_storage_options(backend: str, options: Mapping[str, Any]) -> dict[str, Any]:
    """The options with ``database=ALIAS`` replaced by the alias's ``url`` (sql only)."""
    resolved = dict(options)
    if DATABASE_OPTION not in resolved:
        return resolved
    if backend != "sql":
        raise ConfigurationError(
            f"storage option {DATABASE_OPTION!r} (a Django database alias) is for the 'sql' backend, "
            f"not {backend!r}"
        )
    if "url" in resolved or "engine" in resolved:
        raise ConfigurationError(
            f"sql storage options: give {DATABASE_OPTION!r} or 'url'/'engine', not both"
        )
    alias = resolved.pop(DATABASE_OPTION)
    if not isinstance(alias, str) or not alias:
        raise ConfigurationError(f"sql storage option {DATABASE_OPTION!r} must be a database alias, not {alias!r}")
    resolved["url"] = sqlalchemy_url(alias)
    return resolved
