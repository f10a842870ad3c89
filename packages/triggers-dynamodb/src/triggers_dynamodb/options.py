"""The store's own options, checked once per configuration before anything is sent.

Every bad option is a :class:`~triggers.errors.ConfigurationError` naming the
option (the common ones, and ``session_ttl`` and ``max_clock_skew``, are
checked by core and :mod:`.skew`).
"""

from __future__ import annotations

from typing import Any

from triggers.errors import ConfigurationError
from triggers_dynamodb import clients

__all__ = ["given_client", "new_client", "table_name"]


def table_name(name: object) -> str:
    """``table_name`` as given: a DynamoDB table name of 3-255 characters."""
    if not isinstance(name, str) or not 3 <= len(name) <= 255:
        raise ConfigurationError(
            f"the dynamodb backend needs table_name= (a DynamoDB table name of 3-255 "
            f"characters), got {name!r}"
        )
    return name


def given_client(client: Any, region_name: object, endpoint_url: object) -> Any:
    """``client=`` checked: a low-level boto3 DynamoDB client, and no place given besides."""
    if region_name is not None or endpoint_url is not None:
        raise ConfigurationError(
            "the dynamodb backend takes either client= or region_name=/endpoint_url=, not both"
        )
    if hasattr(client, "Table"):
        # A resource's client converts Python values itself and would
        # garble the typed attribute values this backend sends.
        raise ConfigurationError(
            "client= must be a low-level client (boto3.client('dynamodb')), not a boto3 resource"
        )
    model = getattr(getattr(client, "meta", None), "service_model", None)
    if getattr(model, "service_name", None) != "dynamodb":
        raise ConfigurationError(f"client= must be a boto3 DynamoDB client, got {type(client).__name__}")
    return client


def new_client(region_name: object, endpoint_url: object) -> Any:
    """A client for ``region_name``/``endpoint_url``, or the ConfigurationError naming what is wrong."""
    region, endpoint = _place("region_name", region_name), _place("endpoint_url", endpoint_url)
    try:
        return clients.client_for(region, endpoint)
    except Exception as error:  # botocore: no region, malformed endpoint...
        raise ConfigurationError(
            f"could not make a DynamoDB client (region_name={region!r}, "
            f"endpoint_url={endpoint!r}): {error}"
        ) from error


def _place(option: str, value: object) -> str | None:
    if value is not None and not isinstance(value, str):
        raise ConfigurationError(f"{option}= must be a str, got {type(value).__name__}")
    return value
