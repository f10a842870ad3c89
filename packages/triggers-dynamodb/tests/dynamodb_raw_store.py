"""Raw access to the items of a triggers-dynamodb table, for tests that damage stored data.

Used by this package's conformance tests (the suite's ``raw_store`` hook) and
by the reliability suite's corruption scenario, which imports it from here:
the knowledge of the backend's stored layout stays next to the backend.
"""

from __future__ import annotations

import json
from typing import Any

from triggers_conformance.damage import GARBAGE

__all__ = ["DynamoDBRawStore"]


class DynamoDBRawStore:
    """The session's items in a triggers-dynamodb table.

    ``garbage`` and ``truncated`` damage the ``body`` (JSON text) of every
    active instance item (``I#...``); ``foreign_version`` stores it as a
    native DynamoDB map, as a newer layout (or another program) might.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        from triggers_dynamodb.clients import client_for

        self.client = client_for(options["region_name"], options["endpoint_url"])
        self.table = options["table_name"]

    def _items(self, uid: str) -> list[dict[str, Any]]:
        found = self.client.query(
            TableName=self.table, KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": uid}}, ConsistentRead=True,
        )
        items: list[dict[str, Any]] = found["Items"]
        return items

    def snapshot(self, uid: str) -> Any:
        leases = {"lease_token", "lease_expires"}
        return sorted(
            (json.dumps({k: v for k, v in item.items() if k not in leases}, sort_keys=True)
             for item in self._items(uid)),
        )

    def damage(self, uid: str, kind: str) -> None:
        items = [item for item in self._items(uid) if item["sk"]["S"].startswith("I")]
        assert items, f"session {uid!r} has no stored active instances to damage"
        for item in items:
            body = item["body"]["S"]
            damaged = {
                "garbage": {"S": GARBAGE},
                "truncated": {"S": body[: len(body) // 2]},
                "foreign_version": {"M": {"format": {"N": "999"}, "body": {"S": body}}},
            }[kind]
            self.client.update_item(
                TableName=self.table, Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET body = :b", ExpressionAttributeValues={":b": damaged},
            )
