"""Brokers, a database and real Celery workers for the triggers-celery tests.

RabbitMQ (127.0.0.1:5672, guest/guest) and Redis (127.0.0.1:6379) are the
machine's servers (override with ``TRIGGERS_CELERY_AMQP_URL`` /
``TRIGGERS_CELERY_REDIS_URL``), PostgreSQL holds the sessions
(``TRIGGERS_SQL_POSTGRESQL_URL``). A missing server skips its tests, and
fails them under ``CI=true``. Every test uses queues and tables of its own,
deleted afterwards, so parallel runs never meet.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine

from triggers_conformance import catalogue
from triggers_conformance.catalogue import POSTGRESQL_URL
from triggers_conformance.servers import serve

sys.path.insert(0, str(Path(__file__).parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "examples"))  # the survey demo

from celery_cluster import Cluster, ClusterFactory
from celery_servers import BROKER_URLS, BROKERS


@pytest.fixture(scope="session")
def postgresql() -> Iterator[str]:
    with serve(catalogue.postgresql()):
        yield POSTGRESQL_URL




@pytest.fixture
def cluster(postgresql: str, tmp_path: Path) -> Iterator[ClusterFactory]:
    """``cluster("redis", run_lease_ttl=..., duplicate=...)``: a fresh setup on that broker."""
    made: list[Cluster] = []
    prefix = f"c{uuid.uuid4().hex[:10]}_"

    def make(broker: str, **settings: Any) -> Cluster:
        """``broker`` is ``rabbitmq``, ``redis`` (the machine's) or a broker URL of the test's own."""
        if "://" not in broker:
            with serve(BROKERS[broker]):
                pass
        url = broker if "://" in broker else BROKER_URLS[broker]
        made.append(Cluster(url, f"triggers-test-{uuid.uuid4().hex[:12]}",
                            tmp_path, {"url": postgresql, "table_prefix": prefix}, **settings))
        return made[-1]

    yield make
    for item in made:
        item.close()
    from triggers_sql.schema import tables

    engine = create_engine(postgresql)
    try:
        tables(prefix, None).metadata.drop_all(engine)
    finally:
        engine.dispose()



@pytest.fixture
def namespace() -> Iterator[str]:
    """A memory-backend namespace of this test alone, emptied afterwards."""
    from triggers.memory import MemoryStorageBackend

    name = f"celery-tests-{uuid.uuid4().hex}"
    yield name
    MemoryStorageBackend.clear(name)
