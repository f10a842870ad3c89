"""The guarantees the suite checks, and the marker that ties a test to one.

Each standard test is marked with the guarantee it proves (numbered as on the
Design page of the documentation, docs/design.md) and,
optionally, the capability it needs. A test whose capability the backend does
not claim is skipped with that reason; the run ends with a report per backend.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import pytest

__all__ = ["GUARANTEES", "NOT_CLAIMED", "guarantee"]

_F = TypeVar("_F", bound=Callable[..., Any])

GUARANTEES: dict[str, str] = {
    "session_api": "session-state API",
    "round_trip": "round trip of the value domain",
    "value_domain": "values outside the domain refused, nothing written",
    "configuration": "bad configuration refused, nothing written",
    "options": "bad backend options refused, nothing written",
    "manager": "manager semantics end to end",
    "isolation": "isolation between sessions",
    "mutual_exclusion": "lock exclusion, re-entrancy, bounded wait",
    "lease_expiry": "lease expiry of a dead holder",
    "fenced_saves": "stale holder's save refused",
    "atomic_saves": "a save is seen whole or not at all",
    "no_lost_updates": "no lost updates under concurrency",
    "optimistic_saves": "optimistic saves: overtaken writers retry, leases respected, a lost reply not applied twice",
    "incremental_saves": "saves write only what changed",
    "partial_loads": "fires load only active instances",
    "limits": "declared limits probed at and over the limit",
    "damaged_data": "damaged data reported, left untouched",
}
"""Guarantee keys and what they mean, in report order."""

NOT_CLAIMED = "capability not claimed by this backend: "
"""Prefix of the skip reason of tests whose capability is not claimed."""


def guarantee(key: str, *, requires: str | None = None) -> Callable[[_F], _F]:
    """Mark a standard test as proving ``key``, needing capability ``requires``."""
    if key not in GUARANTEES:
        raise ValueError(f"unknown guarantee {key!r}")

    def mark(test: _F) -> _F:
        marked: _F = pytest.mark.triggers_guarantee(key, requires=requires)(test)
        return marked

    return mark
