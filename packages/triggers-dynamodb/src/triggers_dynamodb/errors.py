"""botocore's errors as the store reports them: which are worth another try, and what an operator reads.

Core's error policy (:meth:`triggers.storage.TriggerStorageBackend._call`)
runs every hook; this module tells it, through the store, which exceptions
are the driver's (:data:`DRIVER_ERRORS`), which of them another try may
overcome (:func:`is_transient`), and the message a caller gets
(:func:`translate`): a missing table is a
:class:`~triggers.errors.SchemaError` saying how to create it, an unreachable
endpoint says so and names it, anything else names the table, the endpoint
and DynamoDB's own code and words. Conditions that are part of the protocol
(a lease held by someone else, a fenced save refused) are read from the
error code by the operation itself and never get here.

A table can go missing while an application runs (deleted by hand, or lost
with the memory of a DynamoDB-API server that restarted, as moto's does). The
store then keeps failing with the same ``SchemaError`` and never creates
the table itself: a new, empty table would silently stand in for the sessions
that were lost. Once an operator has created it, the same objects work again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotoConnectionError

from triggers.errors import SchemaError, StorageError, TriggersError, hide_passwords

__all__ = [
    "CONFLICT_ATTEMPTS",
    "DRIVER_ERRORS",
    "cancellation_codes",
    "cancellation_reasons",
    "error_code",
    "is_transient",
    "pause_after_conflict",
    "translate",
    "translated",
    "where",
]

DRIVER_ERRORS: tuple[type[BaseException], ...] = (ClientError, BotoCoreError)
"""What boto3 raises: a service's refusal, or botocore failing to get an answer."""

CONFLICT_ATTEMPTS = 5
"""Tries of a transaction that collided with another on the same item
(``TransactionConflict``): DynamoDB cancels the later one at once, and the
earlier completes in milliseconds."""

TRANSIENT_CODES = frozenset({
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "TransactionInProgressException",
    "InternalServerError",
    "ServiceUnavailable",
    "TransactionConflictException",
})
"""Refusals that say "not now" rather than "no": throttling, a server error,
or a conditional update colliding with a transaction in flight on the item."""


def error_code(error: BaseException) -> str:
    """The DynamoDB error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(error, ClientError):
        code: Any = error.response.get("Error", {}).get("Code", "")
        return str(code)
    return ""


def is_transient(error: BaseException) -> bool:
    """True for a refusal that another try may well overcome, and that botocore has not
    already tried as often as its client allows.

    botocore's retry modes resend throttled and failed requests themselves and
    mark the answer ``MaxAttemptsReached`` once they gave up; they stop
    earlier when the client's retry quota runs out, and never resend a
    ``TransactionConflictException``. Connection errors (refused, reset, timed
    out) are resent by every retry mode, so one that reaches the store was
    tried as often as the client allows: trying again would only delay the
    report of an outage (a host that never accepts a connection takes 10 s
    per round, see :mod:`.clients`).
    """
    if not isinstance(error, ClientError):
        return False
    exhausted = error.response.get("ResponseMetadata", {}).get("MaxAttemptsReached", False)
    return error_code(error) in TRANSIENT_CODES and not exhausted


def cancellation_codes(error: BaseException) -> list[str] | None:
    """Why DynamoDB cancelled a transaction: a code per item (``"None"`` where the item
    was fine), or None if ``error`` is not a ``TransactionCanceledException``."""
    if error_code(error) != "TransactionCanceledException":
        return None
    return [reason.get("Code", "None") for reason in cancellation_reasons(error)]


def cancellation_reasons(error: BaseException) -> list[dict[str, Any]]:
    """The ``CancellationReasons`` of a cancelled transaction (the item as it was, where asked)."""
    reasons: list[dict[str, Any]] = getattr(error, "response", {}).get("CancellationReasons", [])
    return reasons


def pause_after_conflict(attempt: int) -> None:
    """Wait before sending again a transaction that collided with another in flight."""
    time.sleep(0.01 * 2**attempt)


def translate(
    error: BaseException, action: str, uid: str | None, table_name: str, client: Any
) -> TriggersError:
    """The error a caller sees for a botocore error raised while doing ``action``."""
    what = f"could not {action}"
    if uid is not None:
        what += f"{' of' if action.endswith('lock') else ''} session {uid!r}"
    place = where(client)
    if isinstance(error, ClientError):
        code = error_code(error)
        if code == "ResourceNotFoundException":
            return SchemaError(hide_passwords(
                f"{what}: DynamoDB table {table_name!r} does not exist at {place}, and Triggers "
                f"does not create tables by itself while it runs. Create it with "
                f"{_create_command(table_name, client)} (in code: "
                f"triggers_dynamodb.create_table(client, {table_name!r}))"
            ))
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        return StorageError(hide_passwords(
            f"{what} in DynamoDB table {table_name!r} at {place}: {code}: {message}"
        ))
    if isinstance(error, BotoConnectionError | HTTPClientError):
        # Refused, reset or timed out, after botocore's retries (see clients.py).
        return StorageError(hide_passwords(
            f"{what}: DynamoDB is not reachable at {place} ({type(error).__name__}: {error}); "
            f"table {table_name!r}"
        ))
    return StorageError(hide_passwords(
        f"{what} in DynamoDB table {table_name!r} at {place}: {type(error).__name__}: {error}"
    ))


@contextmanager
def translated(action: str, table_name: str, client: Any) -> Iterator[None]:
    """Translate botocore errors raised inside the block (for the public table functions,
    which run outside any session and any store)."""
    try:
        yield
    except DRIVER_ERRORS as error:
        raise translate(error, action, None, table_name, client) from error


def _create_command(table_name: str, client: Any) -> str:
    """How to create the table ``client`` misses: ``triggers schema create``, then the package's command."""
    region = getattr(getattr(client, "meta", None), "region_name", None)
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    if endpoint and str(endpoint).endswith(".amazonaws.com"):
        endpoint = None  # boto3's own endpoint for the region
    place = {"region_name": region, "endpoint_url": endpoint}
    options = "".join(f" --option {key}={value}" for key, value in place.items() if value)
    flags = "".join(f" --{key.replace('_', '-')} {value}" for key, value in place.items() if value)
    return (
        f"`triggers --backend dynamodb --option table_name={table_name}{options} schema create` "
        f"or `python -m triggers_dynamodb create-table --table-name {table_name}{flags}`"
    )


def where(client: Any) -> str:
    """The endpoint and region a client talks to, for messages."""
    try:
        return f"{client.meta.endpoint_url} (region {client.meta.region_name})"
    except AttributeError:  # pragma: no cover - not a botocore client
        return repr(client)
