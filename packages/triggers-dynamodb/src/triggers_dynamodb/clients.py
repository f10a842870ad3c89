"""How a boto3 DynamoDB client is made: retries and timeouts that bound an outage.

One client per store configuration per process is held by the store
(:class:`~triggers_dynamodb.store.DynamoDBStore`, built once per process by
:meth:`triggers.stores.Store.shared`); this module only makes it. A boto3
client owns a pool of HTTP connections and is thread-safe, so every session
object of the configuration shares it.

Throttling and transient errors (HTTP 5xx, connection resets, throughput
exceeded) are retried by botocore's *standard* retry mode, with exponential
backoff; everything else reaches the store as a ``ClientError`` or
``BotoCoreError``. Credentials come from boto3's usual chain (environment,
shared files, instance roles), never from Triggers' own options.

The timeouts bound an outage: DynamoDB answers in milliseconds, so a request
that gets no answer for long is a store that is down, and the caller should
hear so in seconds, not after botocore's defaults (60 s per attempt). With
these settings a refused or reset connection (a stopped or crashed server)
fails in about half a second (botocore backs off by tens of milliseconds
between attempts on DynamoDB), a host that never accepts the connection in
about ``RETRY_ATTEMPTS * CONNECT_TIMEOUT`` (10 s), and a server (or network)
that stops answering requests it accepted takes ``READ_TIMEOUT`` per attempt,
at most about ``RETRY_ATTEMPTS * READ_TIMEOUT`` (75 s). The read timeout is not shorter because a request that
timed out may still be applied and is then sent again: DynamoDB recognises a
resent transaction by its ``ClientRequestToken``, but moto does not and
refuses the resent save (the backend recognises its own save by the
``save_token`` in the header the refusal returns, see :mod:`.saving`, or else
reports an unknown outcome), and moto takes seconds for a 90-item
transaction in a session of 1,000 items (5.5 s measured; more on a busy
machine). Callers who need other settings pass their own client.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from triggers import observability

__all__ = ["CONNECT_TIMEOUT", "READ_TIMEOUT", "RETRY_ATTEMPTS", "client_for", "count_requests"]

RETRY_ATTEMPTS = 5
"""Attempts per request (the first and four retries) for transient errors."""

CONNECT_TIMEOUT = 2.0
"""Seconds to wait for a TCP (and TLS) connection to the endpoint, per attempt."""

READ_TIMEOUT = 15.0
"""Seconds to wait for an answer, per attempt (see above for why not less)."""

_session: tuple[int, Any] | None = None
"""(process id, boto3 session) that clients are made from: a session loads the
service's model once (a client from a new session costs 20 times more)."""
_session_mutex = threading.Lock()


def client_for(region_name: str | None, endpoint_url: str | None) -> Any:
    """A new DynamoDB client for ``(region_name, endpoint_url)``, configured as above.

    Sessions never call this per operation: their store makes one per process.
    """
    global _session
    # Imported here so that importing the package (e.g. for the entry point
    # listing) does not pay for botocore's start-up.
    import boto3
    from botocore.config import Config

    config = Config(
        # total_max_attempts counts the first attempt (max_attempts would not).
        retries={"mode": "standard", "total_max_attempts": RETRY_ATTEMPTS},
        connect_timeout=CONNECT_TIMEOUT,
        read_timeout=READ_TIMEOUT,
        # Every thread of the process may share this client.
        max_pool_connections=32,
    )
    # A boto3 session is not thread-safe to make clients from, and is made
    # again in a forked child (it holds no connections, but it is cheap).
    with _session_mutex:
        if _session is None or _session[0] != os.getpid():
            _session = (os.getpid(), boto3.session.Session())
        client = _session[1].client(
            "dynamodb", region_name=region_name, endpoint_url=endpoint_url, config=config
        )
    return count_requests(client)


def count_requests(client: Any) -> Any:
    """Let ``client`` count each HTTP request it sends (retries included) as a
    round trip of the span around it (``triggers.round_trips``); idempotent."""
    client.meta.events.register(
        "before-send.dynamodb", _count_request, unique_id="triggers-round-trips"
    )
    return client


def _count_request(**_: Any) -> None:
    """botocore's ``before-send`` hook; returning None lets the request go out."""
    observability.count_round_trip()
