"""botocore errors as Triggers errors, with the driver's error as the cause.

The backend's hooks raise :class:`~triggers.errors.StorageError` (or a
subclass) themselves wherever they know better than a generic message: a
missing table is a :class:`~triggers.errors.SchemaError` saying how to create
it, an unreachable endpoint names the endpoint. Conditions that are part of
the protocol (a lease held by someone else, a fenced save refused) are read
from the error code by the backend before it gets here.

A table can go missing while an application runs (deleted by hand, or lost
with the memory of a DynamoDB-API server that restarted, as moto's does). The
backend then keeps failing with the same ``SchemaError`` and never creates
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

from triggers.errors import SchemaError, StorageError, TriggersError

__all__ = [
    "CONFLICT_ATTEMPTS",
    "cancellation_codes",
    "cancellation_reasons",
    "error_code",
    "pause_after_conflict",
    "store_errors",
]

CONFLICT_ATTEMPTS = 5
"""Tries of a request that collided with another transaction on the same item
(``TransactionConflict``): DynamoDB refuses the later one at once, and the
earlier completes in milliseconds."""


def error_code(error: BaseException) -> str:
    """The DynamoDB error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(error, ClientError):
        code: Any = error.response.get("Error", {}).get("Code", "")
        return str(code)
    return ""


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
    """Wait before sending again a request that collided with a transaction in flight."""
    time.sleep(0.01 * 2**attempt)


@contextmanager
def store_errors(action: str, table_name: str, client: Any) -> Iterator[None]:
    """Turn botocore errors raised inside the block into clear Triggers errors."""
    try:
        yield
    except TriggersError:
        raise
    except ClientError as error:
        code = error_code(error)
        message = error.response.get("Error", {}).get("Message", "") or str(error)
        if code == "ResourceNotFoundException":
            raise SchemaError(
                f"could not {action}: DynamoDB table {table_name!r} does not exist at "
                f"{_where(client)}, and Triggers does not create tables by itself while it runs. "
                f"Create it with {_create_command(table_name, client)} (in code: "
                f"triggers_dynamodb.create_table(client, {table_name!r}))"
            ) from error
        raise StorageError(
            f"could not {action} in DynamoDB table {table_name!r} at {_where(client)}: "
            f"{code}: {message}"
        ) from error
    except (BotoConnectionError, HTTPClientError) as error:
        # Refused, reset or timed out, after botocore's retries (see clients.py).
        raise StorageError(
            f"could not {action}: DynamoDB is not reachable at {_where(client)} "
            f"({type(error).__name__}: {error}); table {table_name!r}"
        ) from error
    except BotoCoreError as error:
        raise StorageError(
            f"could not {action} in DynamoDB table {table_name!r} at {_where(client)}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _create_command(table_name: str, client: Any) -> str:
    """How to create the table ``client`` misses: ``triggers schema create``, then the package's command."""
    region = getattr(getattr(client, "meta", None), "region_name", None)
    endpoint = getattr(getattr(client, "meta", None), "endpoint_url", None)
    if endpoint and str(endpoint).endswith(".amazonaws.com"):
        endpoint = None  # boto3's own endpoint for the region
    where = {"region_name": region, "endpoint_url": endpoint}
    options = "".join(f" --option {key}={value}" for key, value in where.items() if value)
    flags = "".join(f" --{key.replace('_', '-')} {value}" for key, value in where.items() if value)
    return (
        f"`triggers --backend dynamodb --option table_name={table_name}{options} schema create` "
        f"or `python -m triggers_dynamodb create-table --table-name {table_name}{flags}`"
    )


def _where(client: Any) -> str:
    """The endpoint and region a client talks to, for messages."""
    try:
        return f"{client.meta.endpoint_url} (region {client.meta.region_name})"
    except AttributeError:  # pragma: no cover - not a botocore client
        return repr(client)
