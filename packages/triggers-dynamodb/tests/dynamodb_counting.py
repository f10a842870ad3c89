"""Counting what the dynamodb backend sends to the server, with botocore's event hooks."""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Traffic:
    """Requests by operation, items read by queries, items written by transactions."""

    requests: Counter[str] = field(default_factory=Counter)
    items_read: int = 0
    transactions: list[list[str]] = field(default_factory=list)
    """Per TransactWriteItems: ``Put``/``Update``/``Delete`` + ``:`` + sort key, per item."""

    @property
    def items_written(self) -> int:
        return sum(len(actions) for actions in self.transactions)


@contextmanager
def traffic(client: Any) -> Iterator[Traffic]:
    """Record the requests ``client`` makes inside the block."""
    seen = Traffic()

    def before(params: dict[str, Any], model: Any, **_: Any) -> None:
        seen.requests[model.name] += 1
        if model.name == "TransactWriteItems":
            actions = []
            for action in params["TransactItems"]:
                ((kind, body),) = action.items()
                key = body.get("Key") or body.get("Item")
                actions.append(f"{kind}:{key['sk']['S']}")
            seen.transactions.append(actions)

    def after(parsed: dict[str, Any], model: Any, **_: Any) -> None:
        if model.name == "Query":
            seen.items_read += parsed.get("Count", 0)

    events = client.meta.events
    events.register("provide-client-params.dynamodb.*", before, unique_id="count-before")
    events.register("after-call.dynamodb.*", after, unique_id="count-after")
    try:
        yield seen
    finally:
        events.unregister("provide-client-params.dynamodb.*", unique_id="count-before")
        events.unregister("after-call.dynamodb.*", unique_id="count-after")
