"""A DynamoDB-API server for the triggers-dynamodb tests, and a fresh table per test.

The server is described in :mod:`dynamodb_servers`. Each test gets its own
table, deleted afterwards: sessions never meet, and moto (which copies a whole
table on every transaction) stays small.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from triggers_conformance.servers import serve

sys.path.insert(0, str(Path(__file__).parent))

from dynamodb_servers import ENDPOINT, REGION, DynamoDB, server


@pytest.fixture(scope="session")
def dynamodb_server() -> Iterator[DynamoDB]:
    with serve(server()):
        yield DynamoDB("unused", None if ENDPOINT == "aws" else ENDPOINT, REGION)


@pytest.fixture
def dynamodb(dynamodb_server: DynamoDB) -> Iterator[DynamoDB]:
    """A fresh, empty session table on the server, deleted after the test."""
    from triggers_dynamodb import create_table

    where = DynamoDB(f"triggers-test-{uuid.uuid4().hex[:12]}", dynamodb_server.endpoint_url, REGION)
    client = where.client()
    create_table(client, where.table_name)
    try:
        yield where
    finally:
        client.delete_table(TableName=where.table_name)
