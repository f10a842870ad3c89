"""How SQLAlchemy fails, in the words a caller reads, and which failures to try again.

Every database error reaches a caller as a :class:`~triggers.errors.StorageError`
saying what could not be done, on which session, where (the URL, password
hidden) and the driver's own first line, with SQLAlchemy's exception as the
cause. A deadlock or serialization failure is the one error worth another
try: the database rolled back what it interrupted (the statement, or the
whole transaction), so running it again cannot apply anything twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import Engine
from sqlalchemy.exc import DBAPIError, SQLAlchemyError

from triggers.errors import StorageError, TriggersError

__all__ = [
    "DEADLOCK_RETRIES",
    "DRIVER_ERRORS",
    "database_errors",
    "is_deadlock",
    "retrying_deadlocks",
    "storage_error",
    "where",
]

DRIVER_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError,)
"""What SQLAlchemy raises (the DBAPI driver's errors arrive wrapped in it)."""

DEADLOCK_RETRIES = 5
"""How often a save or a lock taking broken by a deadlock is run again."""

_T = TypeVar("_T")


def where(engine: Engine) -> str:
    """The database, for messages: its URL with the password hidden."""
    return engine.url.render_as_string(hide_password=True)


def storage_error(error: SQLAlchemyError, action: str, place: str) -> StorageError:
    """``could not {action} on {place}: {driver error}: {its first line}``."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    detail = str(cause).strip().splitlines()[0] if str(cause).strip() else type(cause).__name__
    return StorageError(f"could not {action} on {place}: {type(cause).__name__}: {detail}")


@contextmanager
def database_errors(action: str, engine: Engine) -> Iterator[None]:
    """Turn SQLAlchemy / DBAPI errors raised inside into :func:`storage_error`."""
    try:
        yield
    except TriggersError:
        raise
    except SQLAlchemyError as error:
        raise storage_error(error, action, where(engine)) from error


def is_deadlock(error: BaseException | None) -> bool:
    """True for a deadlock / serialization failure the database rolled back."""
    if not isinstance(error, DBAPIError) or error.orig is None:
        return False
    orig: Any = error.orig
    if getattr(orig, "sqlstate", None) in ("40001", "40P01"):  # psycopg 3
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in (1213, 1205)  # MySQL/MariaDB deadlock, lock wait timeout


def retrying_deadlocks(call: Callable[[], _T]) -> _T:
    """Run ``call``, and again (up to :data:`DEADLOCK_RETRIES` times) if a deadlock broke it.

    For the calls the base class does not repeat itself: a save (it never
    repeats one, not knowing whether it landed; a deadlock tells it did not)
    and the lock taking, whose lasting refusal is an answer, not an error.
    """
    for attempt in range(DEADLOCK_RETRIES + 1):
        try:
            return call()
        except DBAPIError as error:
            if attempt == DEADLOCK_RETRIES or not is_deadlock(error):
                raise
    raise AssertionError("unreachable")  # pragma: no cover
