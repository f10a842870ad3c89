"""A session's rows as the store keeps them, and back (the tables are in :mod:`.schema`).

Names (the uid, task and metadata names) are stored twice: as a key (a
SHA-256 digest, :func:`.schema.name_key`) that every database indexes and
compares the same way, and as JSON text, which escapes NUL (PostgreSQL's
``text`` refuses it) and keeps everything else. Records are canonical JSON,
the text the core computed to detect the change.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from typing import Any

from triggers.errors import CorruptSessionError
from triggers.storage import RECORD_KINDS, SessionChanges, StoredSession
from triggers_sql import writes
from triggers_sql.schema import name_key

__all__ = ["stored_session", "stored_text", "write_of"]

_KINDS = {"c": "task config", "i": "task instance", "m": "metadata value"}


def stored_text(name: str) -> str:
    """A user-chosen name as stored: JSON text (escapes NUL, keeps everything else)."""
    return json.dumps(name, ensure_ascii=False)


def stored_session(uid: str, rows: Iterable[Sequence[Any]], *, complete: bool) -> StoredSession:
    """The session that the load statement's rows (kind, name, body, version) hold."""
    parts: dict[str, dict[str, Any]] = {"c": {}, "i": {}, "m": {}}
    stored_version: int | None = None
    for kind, name, body, row_version in rows:
        if kind == "s":
            stored_version = row_version
        else:
            key, value = _decoded(uid, kind, name, body)
            parts[kind][key] = value
    return StoredSession(
        configs=parts["c"],
        instances=parts["i"],
        metadata=parts["m"],
        version=stored_version,
        complete=complete,
    )


def _decoded(uid: str, kind: str, name: str, body: str) -> tuple[str, Any]:
    """A stored row's name and value, or CorruptSessionError naming the uid and the row."""
    try:
        return json.loads(name), json.loads(body)
    except ValueError as error:
        raise CorruptSessionError(
            f"session {uid!r}: the stored {_KINDS[kind]} {name[:80]} is not valid JSON "
            f"({error}); it was left untouched"
        ) from error


def write_of(uid: str, changes: SessionChanges) -> writes.Write:
    """The rows of ``changes`` as stored (keys and JSON text), and their fence."""
    rows: dict[str, list[tuple[Any, ...]]] = {kind: [] for kind in RECORD_KINDS}
    for row in changes.rows():
        stored = (name_key(row.name), stored_text(row.name), row.text)
        rows[row.kind].append((*stored, row.active) if row.kind == "instance" else stored)
    return writes.Write(
        key=name_key(uid),
        uid=stored_text(uid),
        base_version=changes.base_version,
        new_version=changes.new_version,
        token=changes.lease_token,
        configs=rows["task"],
        instances=rows["instance"],
        metas=rows["metadata"],
        deleted=[name_key(name) for name in changes.deleted_metadata],
    )
