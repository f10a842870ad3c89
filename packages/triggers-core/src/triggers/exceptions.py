"""Context attached to exceptions (Triggers 2.0's ``triggers.exceptions``).

A task that fails for a reason worth investigating can attach data to the
exception instead of cramming it into the message::

    raise with_context(ValueError("response data failed the spam check"),
                       {"spam_score": score, "threshold": threshold})

The data is logged with the exception when it leaves a ``with
context.get_logger_context() as logger:`` block (``record.context``), and
stored in the failed instance's metadata under ``exceptionContext``
(:attr:`TaskInstance.META_EXCEPTION_CONTEXT
<triggers.types.TaskInstance.META_EXCEPTION_CONTEXT>`), also when the task
retries itself with ``raise self.retry(exc=error)``.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping
from typing import Any, TypeVar

from triggers import values
from triggers.errors import ValueDomainError

__all__ = ["storable_context", "with_context"]

logger = logging.getLogger(__name__)

_E = TypeVar("_E", bound=BaseException)


def with_context(exc: _E, context: Mapping[str, Any]) -> _E:
    """Attach ``context`` to ``exc`` (as ``exc.context``, a dict) and return ``exc``.

    Keys already attached are kept unless ``context`` names them again. An
    existing ``context`` attribute that is not a mapping is kept under
    ``exc.context["_original_context"]``.
    """
    current = getattr(exc, "context", None)
    if current is None:
        current = {}
    elif not isinstance(current, MutableMapping):
        current = {"_original_context": current}
    current.update(context)
    setattr(exc, "context", current)  # noqa: B010 - any exception type
    return exc


def storable_context(exc: BaseException, where: str) -> dict[str, Any] | None:
    """``exc.context`` as instance metadata can hold it, or None if it has none.

    Values outside the value domain (objects, sets...) are kept as their
    ``repr()``, so the context is never lost for being unstorable.
    """
    context = getattr(exc, "context", None)
    if not isinstance(context, Mapping) or not context:
        return None
    try:
        # Stored one level inside an instance's metadata.
        checked: dict[str, Any] = values.decode(values.encode(dict(context), where, depth=1))
        return checked
    except (ValueDomainError, TypeError) as problem:
        logger.info("%s: keeping unstorable values as their repr(): %s", where, problem)
    kept: dict[str, Any] = {}
    for key, value in context.items():
        try:
            kept[str(key)] = values.decode(values.encode(value, f"{where}[{key!r}]", depth=2))
        except (ValueDomainError, TypeError):
            kept[str(key)] = repr(value)
    return kept
