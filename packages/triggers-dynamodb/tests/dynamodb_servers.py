"""Where the triggers-dynamodb tests find their DynamoDB-API server, and their table.

By default the tests talk to moto's server on 127.0.0.1:5056 (started by the
tests when nothing answers there, one request at a time: see
:mod:`dynamodb_moto_server`), through boto3 over HTTP, exactly as
to DynamoDB itself. ``TRIGGERS_DYNAMODB_ENDPOINT`` points them at another
server (DynamoDB Local: ``http://localhost:8000``; real DynamoDB: ``aws``,
meaning boto3's default endpoint for ``AWS_DEFAULT_REGION``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from triggers_conformance import catalogue
from triggers_conformance.servers import Server, port_answers

MOTO_PORT = 5056
"""Not moto_server's usual 5055: the tests need their own, serializing server."""
ENDPOINT = os.environ.get("TRIGGERS_DYNAMODB_ENDPOINT", f"http://127.0.0.1:{MOTO_PORT}")
USES_MOTO = "TRIGGERS_DYNAMODB_ENDPOINT" not in os.environ
REGION = os.environ.get("AWS_DEFAULT_REGION", "us-east-1")

if ENDPOINT != "aws":
    # Local servers accept any credentials; real DynamoDB uses boto3's chain.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")


@dataclass(frozen=True)
class DynamoDB:
    """Where one test's table lives: pass ``options`` to the backend."""

    table_name: str
    endpoint_url: str | None
    region_name: str

    @property
    def options(self) -> dict[str, Any]:
        return {
            "table_name": self.table_name,
            "endpoint_url": self.endpoint_url,
            "region_name": self.region_name,
        }

    def client(self) -> Any:
        """The client the backend uses for these options in this process (its store's)."""
        from triggers_dynamodb import DynamoDBStorageBackend

        return DynamoDBStorageBackend.store_for(**self.options).client


def server() -> Server:
    if USES_MOTO:
        return catalogue.moto(MOTO_PORT)
    if ENDPOINT == "aws":
        return Server("DynamoDB", f"dynamodb.{REGION}.amazonaws.com", 443)
    parts = urlsplit(ENDPOINT)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return Server("DynamoDB", host, port, ready=lambda: port_answers(host, port))
