"""Raw access to a store's data, so tests can damage it as another program would.

A backend's test class provides a :class:`RawStore` through the optional
``raw_store`` fixture; the suite's damaged-data tests (and the reliability
suite's corruption scenario) use it to snapshot what the backend stored for a
session and to damage it in each of the :data:`KINDS` of ways.
"""

from __future__ import annotations

from typing import Any, Protocol

__all__ = ["GARBAGE", "KINDS", "RawStore"]

KINDS = ("garbage", "truncated", "foreign_version")
"""The kinds of damage every store's class can do."""

GARBAGE = "\ufffd\x01 not a session {[\"' \\"
"""Text no JSON parser accepts, and no NUL (PostgreSQL's text type refuses NUL)."""


class RawStore(Protocol):
    """Raw access to one store's data for a session, bypassing the backend.

    A store whose ``foreign_version`` damage writes a newer *schema* version
    (rather than one session's data in a newer format) says so with a class
    attribute ``schema_versions = True``: the suite then expects a
    ``SchemaError`` saying which schema version it found, instead of a
    ``CorruptSessionError`` naming the session.
    """

    def snapshot(self, uid: str) -> Any:
        """Everything stored for ``uid`` except leases, as comparable plain data."""

    def damage(self, uid: str, kind: str) -> None:
        """Damage the stored session in the way ``kind`` (one of :data:`KINDS`) says."""
