"""A MongoDB-protocol server for the triggers-mongo tests.

By default the tests start SecantusDB (``secantusd-py``, from the dev
environment) in memory on 127.0.0.1:27018, or use whatever already answers
there. ``TRIGGERS_MONGO_URL`` points them at any other server instead, a real
``mongod`` for example. Every test run uses its own database and drops it
afterwards, so runs sharing a server never meet.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pymongo import MongoClient
from pymongo.errors import ServerSelectionTimeoutError

from triggers_conformance import catalogue
from triggers_conformance.servers import serve

sys.path.insert(0, str(Path(__file__).parent))

URL = catalogue.MONGO_URL
RUN_DATABASE = f"triggers_test_{uuid.uuid4().hex[:10]}"


@pytest.fixture(scope="session")
def mongo_url() -> Iterator[str]:
    """The server's URL, once it answers; the run's database is dropped at the end."""
    with serve(catalogue.mongo(URL)):
        yield URL
        client: MongoClient[dict[str, Any]] = MongoClient(URL, serverSelectionTimeoutMS=5000)
        try:
            client.drop_database(RUN_DATABASE)
        except ServerSelectionTimeoutError:
            # A server found running belongs to another test run, which may have
            # stopped it (in memory, taking our database with it) before we end.
            pass
        finally:
            client.close()


@pytest.fixture(scope="session")
def mongo_database(mongo_url: str) -> str:
    """The database of this test run (dropped at its end)."""
    return RUN_DATABASE


@pytest.fixture
def collection_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
def mongo_options(mongo_url: str, mongo_database: str, collection_prefix: str) -> dict[str, Any]:
    """Options for a fresh pair of collections in the run's database."""
    return {"url": mongo_url, "database": mongo_database, "collection": collection_prefix}
