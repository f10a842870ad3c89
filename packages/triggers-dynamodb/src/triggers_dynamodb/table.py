"""Creating and checking the session table.

Teams that manage infrastructure as code create the table themselves (the
layout is in the package README); the others run ``python -m
triggers_dynamodb create-table --table-name NAME`` once, or pass
``create_table=True`` in development. The backend never creates a table
unless told to.
"""

from __future__ import annotations

from typing import Any

from triggers.errors import SchemaError
from triggers_dynamodb.errors import error_code, translated

__all__ = ["TTL_ATTRIBUTE", "check", "check_table", "create", "create_table"]

TTL_ATTRIBUTE = "expires_at"
"""Item attribute (epoch seconds) that DynamoDB's Time To Live deletes by."""

_KEY_SCHEMA = [
    {"AttributeName": "pk", "KeyType": "HASH"},
    {"AttributeName": "sk", "KeyType": "RANGE"},
]
_ATTRIBUTES = [
    {"AttributeName": "pk", "AttributeType": "S"},
    {"AttributeName": "sk", "AttributeType": "S"},
]


def create_table(client: Any, table_name: str, *, wait_seconds: float = 300) -> list[str]:
    """Create the table (on-demand billing, TTL on ``expires_at``); idempotent.

    Waits until the table is ACTIVE. Returns a line per thing done or found,
    for the operator. An existing table with another key schema is refused
    with :class:`SchemaError`; botocore's errors reach the caller as
    :class:`~triggers.errors.StorageError`.
    """
    with translated(f"create table {table_name!r}", table_name, client):
        return create(client, table_name, wait_seconds=wait_seconds)


def check_table(client: Any, table_name: str) -> list[str]:
    """Describe the table; raise :class:`SchemaError` if missing or keyed otherwise."""
    with translated(f"check table {table_name!r}", table_name, client):
        return check(client, table_name)


def create(client: Any, table_name: str, *, wait_seconds: float = 300) -> list[str]:
    """:func:`create_table`, botocore's errors untranslated (the store's policy translates them)."""
    lines: list[str] = []
    try:
        client.create_table(
            TableName=table_name,
            KeySchema=_KEY_SCHEMA,
            AttributeDefinitions=_ATTRIBUTES,
            BillingMode="PAY_PER_REQUEST",
        )
        lines.append(f"created table {table_name} (on-demand billing, key pk/sk)")
    except Exception as error:
        if error_code(error) != "ResourceInUseException":
            raise
        lines.append(f"table {table_name} exists")
    delay = 1 if wait_seconds >= 1 else wait_seconds
    client.get_waiter("table_exists").wait(
        TableName=table_name,
        WaiterConfig={"Delay": delay, "MaxAttempts": max(1, int(wait_seconds / max(delay, 0.1)))},
    )
    lines.extend(check(client, table_name))
    ttl = client.describe_time_to_live(TableName=table_name)["TimeToLiveDescription"]
    if ttl.get("TimeToLiveStatus") in ("ENABLED", "ENABLING"):
        lines.append(f"time to live on {ttl.get('AttributeName')} already enabled")
    else:
        client.update_time_to_live(
            TableName=table_name,
            TimeToLiveSpecification={"Enabled": True, "AttributeName": TTL_ATTRIBUTE},
        )
        lines.append(f"enabled time to live on {TTL_ATTRIBUTE}")
    return lines


def check(client: Any, table_name: str) -> list[str]:
    """:func:`check_table`, botocore's errors untranslated (the store's policy translates them)."""
    table = client.describe_table(TableName=table_name)["Table"]
    keys = {(k["AttributeName"], k["KeyType"]) for k in table["KeySchema"]}
    types = {a["AttributeName"]: a["AttributeType"] for a in table["AttributeDefinitions"]}
    expected = {(k["AttributeName"], k["KeyType"]) for k in _KEY_SCHEMA}
    if keys != expected or types.get("pk") != "S" or types.get("sk") != "S":
        raise SchemaError(
            f"DynamoDB table {table_name!r} is keyed {sorted(keys)} with types {types}; "
            "Triggers needs partition key pk (S) and sort key sk (S). Use another table_name"
        )
    billing = table.get("BillingModeSummary", {}).get("BillingMode", "PROVISIONED")
    return [f"table {table_name}: {table.get('TableStatus')}, key pk/sk, billing {billing}"]
