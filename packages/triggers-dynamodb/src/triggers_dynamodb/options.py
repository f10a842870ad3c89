"""The backend's own options, checked when a session object is made, and the table check.

Every bad option is a :class:`~triggers.errors.ConfigurationError` naming the
option, raised before anything is sent to DynamoDB. The table is created
(``create_table=True``) or checked once per process and client, before the
first session uses it, so a typo in ``table_name`` is an error, not a new
table.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Mapping
from typing import Any

from triggers.errors import ConfigurationError
from triggers_dynamodb import clients, table

__all__ = ["prepare", "table_name", "target", "ttl", "validated_client"]

_prepared: set[tuple[int, str]] = set()
"""(client, table) pairs created or checked in this process."""
_prepared_mutex = threading.Lock()


def ttl(value: object) -> float | None:
    """``ttl`` as given: positive seconds, or ``None`` (sessions never expire)."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value <= 0:
        raise ConfigurationError(f"ttl must be a positive number of seconds or None, not {value!r}")
    return float(value)


def table_name(name: object) -> str:
    """``table_name`` as given: a DynamoDB table name of 3-255 characters."""
    if not isinstance(name, str) or not 3 <= len(name) <= 255:
        raise ConfigurationError(
            f"the dynamodb backend needs table_name= (a DynamoDB table name of 3-255 "
            f"characters), got {name!r}"
        )
    return name


def validated_client(client: Any, region_name: str | None, endpoint_url: str | None) -> Any:
    """The low-level client to use: ``client`` checked, or this process's for the place."""
    if client is not None:
        if region_name is not None or endpoint_url is not None:
            raise ConfigurationError(
                "the dynamodb backend takes either client= or region_name=/endpoint_url=, not both"
            )
        if hasattr(client, "Table"):
            # A resource's client converts Python values itself and would
            # garble the typed attribute values this backend sends.
            raise ConfigurationError(
                "client= must be a low-level client (boto3.client('dynamodb')), not a "
                "boto3 resource"
            )
        model = getattr(getattr(client, "meta", None), "service_model", None)
        if getattr(model, "service_name", None) != "dynamodb":
            raise ConfigurationError(
                f"client= must be a boto3 DynamoDB client, got {type(client).__name__}"
            )
        return client
    for option, value in (("region_name", region_name), ("endpoint_url", endpoint_url)):
        if value is not None and not isinstance(value, str):
            raise ConfigurationError(f"{option}= must be a str, got {type(value).__name__}")
    try:
        return clients.client_for(region_name, endpoint_url)
    except Exception as error:  # botocore: no region, malformed endpoint...
        raise ConfigurationError(
            f"could not make a DynamoDB client (region_name={region_name!r}, "
            f"endpoint_url={endpoint_url!r}): {error}"
        ) from error


def target(options: Mapping[str, Any]) -> tuple[str, Any]:
    """Table name and client from backend options (for the class-level administration)."""
    return (
        table_name(options.get("table_name")),
        validated_client(options.get("client"), options.get("region_name"), options.get("endpoint_url")),
    )


def prepare(client: Any, name: str, *, create: bool) -> None:
    """Create or check the table once per process, before the first session uses it."""
    marker = (id(client), name)
    if marker in _prepared:
        return
    with _prepared_mutex:
        if marker in _prepared:
            return
        if create:
            table.create_table(client, name)
        else:
            table.check_table(client, name)
        _prepared.add(marker)
