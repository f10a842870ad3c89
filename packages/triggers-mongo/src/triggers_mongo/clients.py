"""One ``MongoClient`` per URL per process, and what the server can do.

A client owns a connection pool and monitor threads, so every session object
of a process shares one per URL (a client per session would exhaust the
server). Clients are keyed by process id too: pymongo is not fork-safe (its
monitors are threads, its sockets would be shared with the parent), so a
forked child builds its own client on first use.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from pymongo import MongoClient, monitoring

from triggers import observability

__all__ = ["client_for", "supports_transactions"]

_clients: dict[tuple[str, int], MongoClient[dict[str, Any]]] = {}
_transactions: dict[tuple[int, int], bool] = {}
_mutex = threading.Lock()


def client_for(url: str) -> MongoClient[dict[str, Any]]:
    """The client of ``url`` for this process, created on first use (connects lazily)."""
    key = (url, os.getpid())
    with _mutex:
        client = _clients.get(key)
        if client is None:
            client = _clients[key] = MongoClient(url, connect=False, event_listeners=[_ROUND_TRIPS])
        return client


def supports_transactions(client: MongoClient[dict[str, Any]]) -> bool:
    """True when the server runs multi-document transactions (replica set or mongos).

    Asked once per client and process with ``hello``: a standalone ``mongod``
    has neither ``setName`` nor the ``isdbgrid`` message of a router.
    """
    key = (id(client), os.getpid())
    with _mutex:
        known = _transactions.get(key)
    if known is not None:
        return known
    hello = client.admin.command("hello")
    supported = bool(hello.get("setName")) or hello.get("msg") == "isdbgrid"
    supported = supported and hello.get("logicalSessionTimeoutMinutes") is not None
    with _mutex:
        _transactions[key] = supported
    return supported


class _RoundTrips(monitoring.CommandListener):
    """Counts each command a client sends (a round trip) on the span around it.

    pymongo calls ``started`` in the thread that sends the command, so the
    count lands on that thread's load, save or lock-wait span. Only clients
    this module makes count; a ``client=`` passed in has its own listeners.
    """

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        observability.count_round_trip()

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        pass

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass


_ROUND_TRIPS = _RoundTrips()
