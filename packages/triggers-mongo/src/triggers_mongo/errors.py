"""Driver errors as triggers errors: what failed, where (password hidden), and why."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from pymongo.errors import PyMongoError

from triggers.errors import StorageError, TriggersError

__all__ = ["driver_errors", "hide_password"]

_CREDENTIALS = re.compile(r"(mongodb(?:\+srv)?://[^:/@]*):[^@/]*@")


def hide_password(url: str) -> str:
    """``url`` with the password (if any) replaced by ``***``."""
    return _CREDENTIALS.sub(r"\1:***@", url)


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
        detail = hide_password(detail)[:500]
        raise StorageError(
            f"could not {action} on MongoDB {where}: {type(error).__name__}: {detail}"
        ) from error
