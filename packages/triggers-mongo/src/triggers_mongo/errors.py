"""Driver errors as triggers errors: what failed, where (password hidden), and why."""

from __future__ import annotations

from pymongo.errors import PyMongoError

from triggers.errors import StorageError, hide_passwords

__all__ = ["DRIVER_ERRORS", "translate"]

DRIVER_ERRORS: tuple[type[BaseException], ...] = (PyMongoError,)
"""What pymongo raises; anything else is not the store failing."""


def translate(error: BaseException, action: str, uid: str | None, where: str) -> StorageError:
    """The :class:`StorageError` a caller sees for a pymongo error raised while doing
    ``action`` (on session ``uid``, if any) on the store described by ``where``.

    The first line of the driver's message, passwords hidden, at most 500
    characters; the driver's exception stays reachable as ``__cause__``.
    """
    what = action
    if uid is not None:
        what += f"{' of' if action.endswith('lock') else ''} session {uid!r}"
    detail = str(error).strip().splitlines()[0] if str(error).strip() else ""
    detail = hide_passwords(detail)[:500]
    return StorageError(f"could not {what} on MongoDB {where}: {type(error).__name__}: {detail}")
