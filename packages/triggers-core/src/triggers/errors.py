"""The error hierarchy of Triggers.

Every error the library raises on purpose derives from :class:`TriggersError`,
so an application can catch the whole family with one ``except``. Errors that
are also a bad *value* derive from :class:`ValueError` (or :class:`TypeError`)
too, so code written against the standard exceptions keeps working.

Errors carry context in their message (the session uid, the task or instance
name, the directive, the path inside a value) and, where a driver failed, the
driver's exception as ``__cause__``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

__all__ = [
    "BackendNotFoundError",
    "ClockSkewError",
    "ConfigurationError",
    "ContentionError",
    "CorruptSessionError",
    "InstanceNotFoundError",
    "InvalidTransitionError",
    "LeaseExpiredError",
    "LockNotHeldError",
    "LockTimeoutError",
    "MaxRetriesExceeded",
    "Retry",
    "RetryTask",
    "SessionLimitError",
    "SessionLostError",
    "StaleSessionError",
    "StatusChange",
    "StorageError",
    "TriggersError",
    "UnsupportedValueError",
    "ValueDomainError",
    "hide_passwords",
]


class TriggersError(Exception):
    """Base class of every error that Triggers raises deliberately."""


class ConfigurationError(TriggersError, ValueError):
    """A task configuration (or backend option) is invalid.

    The message names the task and the directive, e.g.
    ``task 't_importSubject': directive 'after' is required``. Nothing is saved
    when a configuration is refused.
    """


class BackendNotFoundError(TriggersError, LookupError):
    """No backend, manager or runner is registered under the requested name.

    The message lists the names that are installed.
    """


class ValueDomainError(TriggersError, ValueError):
    """A value lies outside the storable domain (NaN, a naive datetime, an int
    beyond 64 bits, nesting too deep...).

    ``path`` says where inside the value the problem is, e.g.
    ``kwargs['page']['tags'][2]``.
    """

    def __init__(self, message: str, path: str = "") -> None:
        super().__init__(message)
        self.path = path


class UnsupportedValueError(ValueDomainError, TypeError):
    """A value has a type that cannot be stored (objects, sets, bytes...).

    It is both a :class:`ValueError` and a :class:`TypeError`: the type is
    wrong, and the value is outside the domain.
    """


class InstanceNotFoundError(TriggersError, KeyError):
    """A task instance name does not exist in the session."""

    def __str__(self) -> str:  # KeyError would repr() the message
        return str(self.args[0]) if self.args else ""


class InvalidTransitionError(TriggersError, ValueError):
    """An instance cannot go from its current status to the requested one
    (for example replaying an instance that has not failed)."""


class StorageError(TriggersError):
    """The store failed (connection lost, server error...).

    The driver's exception is attached as ``__cause__``.
    """


class CorruptSessionError(StorageError):
    """Stored data for a session could not be decoded.

    Raised instead of a decoding traceback; the stored data is left untouched.
    """


class SessionLostError(CorruptSessionError):
    """Part of a session's finished history is gone from its store (evicted or expired).

    Raised by stores that may forget keys on their own (a cache under memory
    pressure, :mod:`triggers.keyvalue`). The rest of the session
    (configurations, metadata, unfinished instances) is intact, so fires and
    saves go on; only loading the whole history fails.
    """


class SchemaError(StorageError):
    """The store's tables or indexes are missing, or were made by another version.

    The message says how to fix it (for example which command creates or
    migrates the schema); nothing is written to a store with the wrong schema.
    """


class SessionLimitError(TriggersError, ValueError):
    """A session (or one of its records) is larger than the store allows.

    Raised before anything is written, so the stored state is unchanged.
    """


class LockTimeoutError(TriggersError, TimeoutError):
    """The session lock could not be acquired within the bounded wait."""


class ContentionError(LockTimeoutError):
    """An optimistic save kept being refused until its bounded wait ran out.

    Raised by :meth:`~triggers.storage.TriggerStorageBackend.transact` (and so
    by every manager operation) when, for the whole wait, other writers kept
    saving first or a lock holder kept the session leased. The message names
    the session, the number of attempts and the last reason. Nothing was
    written. A :class:`LockTimeoutError`, so code that handles a lock wait
    running out handles this too.
    """


class ClockSkewError(TriggersError, RuntimeError):
    """This machine's clock disagrees with the store's by more than the backend tolerates.

    Raised when taking the lock, on stores that have no clock of their own to
    judge lease expiry by (DynamoDB): a process whose clock runs ahead would
    take live leases as expired, and one whose clock runs behind would write
    leases that others take at once. Refusing keeps mutual exclusion; nothing
    was written, and no lease is left behind. Fix the clock (NTP), or raise the
    backend's ``max_clock_skew`` option if the skew is known to be harmless.
    """


class LockNotHeldError(TriggersError, RuntimeError):
    """A save was attempted without holding the session lock (or after the
    lock's lease ran out locally)."""


class StaleSessionError(StorageError):
    """A save was refused because the stored session moved on.

    Either the lease was taken over by another holder after it expired, or the
    stored version is newer than the one this object loaded, or (for an
    optimistic save) a lease holder has the session. Nothing was written;
    reload (acquire the lock again) and retry.

    ``reason`` says which, when the store used the constructors below:
    ``"version_moved"``, ``"created_elsewhere"``, ``"lease_taken_over"`` or
    ``"leased"`` (``None`` otherwise).
    """

    reason: str | None = None

    @classmethod
    def _because(cls, reason: str, message: str) -> StaleSessionError:
        error = cls(message)
        error.reason = reason
        return error

    # One vocabulary for every store's refusals, so that an operator reads the
    # same words whichever backend refused the save.

    @classmethod
    def version_moved(cls, uid: str, loaded: object, stored: object) -> StaleSessionError:
        """Refused: another save landed since this writer loaded the session."""
        return cls._because("version_moved", (
            f"session {uid!r}: the stored version is {stored}, this writer loaded {loaded}; "
            "nothing was written"
        ))

    @classmethod
    def created_elsewhere(cls, uid: str) -> StaleSessionError:
        """Refused: this writer found no session, and another created it first."""
        return cls._because(
            "created_elsewhere",
            f"session {uid!r}: another writer created the session first; nothing was written",
        )

    @classmethod
    def lease_taken_over(cls, uid: str) -> StaleSessionError:
        """Refused: the lease this holder saves under was taken over."""
        return cls._because(
            "lease_taken_over",
            f"session {uid!r}: the lease was taken over by another holder; nothing was written",
        )

    @classmethod
    def leased(cls, uid: str, detail: str = "") -> StaleSessionError:
        """Refused: an optimistic save met a live lease (``detail`` may say whose, until when)."""
        return cls._because("leased", (
            f"session {uid!r} is locked by a lease holder{detail}; this optimistic save was "
            "refused and nothing was written"
        ))


class LeaseExpiredError(StaleSessionError):
    """The lock's lease ran out before the save, so the save was refused.

    Another holder may already have taken the session over; acquire the lock
    again (which reloads the session) and redo the change.
    """


class RetryTask(TriggersError):
    """Raised by a task to ask the runner to run it again.

    The instance is rescheduled until it has been retried ``max_retries``
    times; after that it is marked failed with this exception.
    """

    def __init__(self, reason: str = "", *, max_retries: int = 3) -> None:
        super().__init__(reason or "task asked to be retried")
        self.reason = reason
        self.max_retries = max_retries


class StatusChange(TriggersError):
    """Raised by a task to end with ``status`` instead of ``finished``, as in Triggers 2.0.

    ``metadata`` is merged into the instance's metadata. The usual way to
    raise one is ``raise self.skip({...})`` in a
    :class:`~triggers.tasks.TriggerTask`; it is the exception form of
    :meth:`TaskContext.set_status <triggers.tasks.TaskContext.set_status>`
    and allows the same statuses.
    """

    def __init__(self, status: str, metadata: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"task asked to end {status}")
        self.status = status
        self.metadata: dict[str, Any] = dict(metadata or {})


class Retry(StatusChange):
    """Raised by a task to be replayed, as ``TriggerTask.retry()`` did in Triggers 2.0.

    The instance is marked failed (with ``metadata``) and then replayed at
    once, in the same save: it becomes ``replayed`` and its clone
    (``task#N+1``, ``depth`` + 1) is scheduled, with ``replacement_kwargs``
    instead of the original kwargs if given. Unlike :class:`RetryTask`,
    which runs the *same* instance again, every attempt leaves an instance
    behind. ``cooldown`` is recorded in the failed instance's metadata
    (``cooldown``); the runners of this package do not wait for it.
    """

    def __init__(
        self,
        metadata: Mapping[str, Any] | None = None,
        replacement_kwargs: Mapping[str, Mapping[str, Any]] | None = None,
        cooldown: float | None = None,
    ) -> None:
        merged: dict[str, Any] = dict(metadata or {})
        merged.setdefault("cooldown", cooldown)
        super().__init__("failed", merged)
        self.replacement_kwargs = None if replacement_kwargs is None else dict(replacement_kwargs)
        self.cooldown = cooldown


class MaxRetriesExceeded(TriggersError):
    """A task asked to be retried (``TriggerTask.retry()``) more than its ``max_retries``."""


_URL_PASSWORD = re.compile(r"(://[^:/@\s]*:)[^@/\s]+@")


def hide_passwords(text: str) -> str:
    """``scheme://user:secret@host`` becomes ``scheme://user:***@host``.

    Messages name the server they failed on; connection URLs carry passwords.
    Every message that can contain a URL (driver errors, the command line's
    output) passes through this one function.
    """
    return _URL_PASSWORD.sub(r"\1***@", text)
