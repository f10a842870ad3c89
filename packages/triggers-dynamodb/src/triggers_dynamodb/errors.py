"""botocore errors as Triggers errors, with the driver's error as the cause.

The backend's hooks raise :class:`~triggers.errors.StorageError` (or a
subclass) themselves wherever they know better than a generic message: a
missing table is a :class:`~triggers.errors.SchemaError` saying how to create
it, an unreachable endpoint names the endpoint. Conditions that are part of
the protocol (a lease held by someone else, a fenced save refused) are read
from the error code by the backend before it gets here.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError

from triggers.errors import SchemaError, StorageError, TriggersError

__all__ = ["error_code", "store_errors"]


def error_code(error: BaseException) -> str:
    """The DynamoDB error code of a ``ClientError`` (``""`` for anything else)."""
    if isinstance(error, ClientError):
        code: Any = error.response.get("Error", {}).get("Code", "")
        return str(code)
    return ""


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
                f"{_where(client)}. Create it with `python -m triggers_dynamodb create-table "
                f"--table-name {table_name}` (or pass create_table=True)"
            ) from error
        raise StorageError(
            f"could not {action} in DynamoDB table {table_name!r} at {_where(client)}: "
            f"{code}: {message}"
        ) from error
    except EndpointConnectionError as error:
        raise StorageError(
            f"could not {action}: DynamoDB is not reachable at {_where(client)} ({error})"
        ) from error
    except BotoCoreError as error:
        raise StorageError(
            f"could not {action} in DynamoDB table {table_name!r} at {_where(client)}: "
            f"{type(error).__name__}: {error}"
        ) from error


def _where(client: Any) -> str:
    """The endpoint and region a client talks to, for messages."""
    try:
        return f"{client.meta.endpoint_url} (region {client.meta.region_name})"
    except AttributeError:  # pragma: no cover - not a botocore client
        return repr(client)
