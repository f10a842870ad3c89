"""The brokers of the triggers-celery tests: the machine's RabbitMQ and Redis.

Override their URLs with ``TRIGGERS_CELERY_AMQP_URL`` / ``TRIGGERS_CELERY_REDIS_URL``.
"""

from __future__ import annotations

import os

from kombu import Connection

from triggers_conformance.servers import Server

AMQP_URL = os.environ.get("TRIGGERS_CELERY_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("TRIGGERS_CELERY_REDIS_URL", "redis://127.0.0.1:6379/14")


def _broker_answers(url: str) -> bool:
    with Connection(url, connect_timeout=2) as connection:
        connection.ensure_connection(max_retries=1)
    return True


BROKERS = {
    "rabbitmq": Server("RabbitMQ", "127.0.0.1", 5672, ready=lambda: _broker_answers(AMQP_URL),
                       install="apt-get install rabbitmq-server, or set TRIGGERS_CELERY_AMQP_URL"),
    "redis": Server("Redis", "127.0.0.1", 6379, ready=lambda: _broker_answers(REDIS_URL),
                    install="apt-get install redis-server, or set TRIGGERS_CELERY_REDIS_URL"),
}
BROKER_URLS = {"rabbitmq": AMQP_URL, "redis": REDIS_URL}


