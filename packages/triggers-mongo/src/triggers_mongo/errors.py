"""Driver errors as triggers errors: what failed, where (password hidden), and why."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from pymongo.errors import PyMongoError

from triggers.errors import StorageError, TriggersError, hide_passwords

__all__ = ["driver_errors"]


@contextmanager
def driver_errors(action: str, where: str) -> Iterator[None]:
    """Turn any pymongo error into :class:`StorageError` naming ``action`` and ``where``.

    The driver's exception stays reachable as ``__cause__``.
    """
    try:
        yield
    except TriggersError:
        raise
    except PyMongoError as error:
        detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
        detail = hide_passwords(detail)[:500]
        raise StorageError(
            f"could not {action} on MongoDB {where}: {type(error).__name__}: {detail}"
        ) from error
