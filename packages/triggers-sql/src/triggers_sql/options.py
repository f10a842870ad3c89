"""The sql backend's own options, checked once when its store is built.

Each refusal is a :class:`~triggers.errors.ConfigurationError` naming the
option, raised before anything connects, whichever process later uses it.
"""

from __future__ import annotations

import re

from sqlalchemy import Engine
from sqlalchemy.exc import SQLAlchemyError

from triggers.errors import ConfigurationError
from triggers_sql import engines, schema
from triggers_sql.schema import Tables

__all__ = ["checked_engine", "checked_tables"]

_PREFIX = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,39}\Z")


def checked_engine(url: str | None, engine: Engine | None) -> Engine:
    """The engine that exactly one of ``url`` / ``engine`` names (a URL's: this process's)."""
    if (url is None) == (engine is None):
        raise ConfigurationError(
            "the sql backend needs exactly one of url= (a SQLAlchemy database URL, e.g. "
            "'sqlite:///triggers.db') or engine= (an existing Engine)"
        )
    if engine is not None:
        if not isinstance(engine, Engine):
            raise ConfigurationError(
                f"engine= must be a sqlalchemy Engine, got {type(engine).__name__}"
            )
        return engine
    if not isinstance(url, str):
        raise ConfigurationError(f"url= must be a str, got {type(url).__name__}")
    try:
        return engines.engine_for(url)  # makes the engine, does not connect
    except (SQLAlchemyError, ImportError, ValueError) as error:
        raise ConfigurationError(f"url={url!r} is not usable: {error}") from error


def checked_tables(prefix: str, schema_name: str | None) -> Tables:
    """The tables named by ``table_prefix`` and ``schema``."""
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigurationError(
            f"table_prefix={prefix!r}: use 1-40 letters, digits or underscores, not starting "
            "with a digit"
        )
    if schema_name is not None and not isinstance(schema_name, str):
        raise ConfigurationError(f"schema= must be a str or None, got {type(schema_name).__name__}")
    return schema.tables(prefix, schema_name)
