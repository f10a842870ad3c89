"""The stored form of a session: JSON text made by this library, never a pickle.

Django caches pickle whatever they are given, so the backend gives them only
``str``: a pickled string is just a string, and nothing of ours is ever a
pickled object. On the way back, anything that is not our JSON document for
this uid (a foreign value under our key, a truncated write, garbage) raises
:class:`~triggers.errors.CorruptSessionError` naming the uid.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from triggers import values
from triggers.errors import CorruptSessionError

__all__ = ["FORMAT", "SessionBlob", "decode_blob", "decode_head", "encode_blob"]

FORMAT = "triggers-cache/1"


@dataclass(frozen=True)
class SessionBlob:
    version: int
    configs: dict[str, Any]
    instances: dict[str, Any]
    metadata: dict[str, Any]


def encode_blob(uid: str, blob: SessionBlob) -> str:
    return values.canonical_json(
        {
            "format": FORMAT,
            "uid": uid,
            "version": blob.version,
            "tasks": blob.configs,
            "instances": blob.instances,
            "metadata": blob.metadata,
        }
    )


def _corrupt(uid: str, what: str) -> CorruptSessionError:
    return CorruptSessionError(
        f"session {uid!r}: the cache holds {what} under this session's key, not a session "
        "stored by triggers-cache; it was left as it is"
    )


def decode_blob(uid: str, raw: object, version: int) -> SessionBlob:
    if not isinstance(raw, str):
        raise _corrupt(uid, f"a {type(raw).__name__}")
    try:
        document = json.loads(raw)
    except ValueError:
        raise _corrupt(uid, "text that is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise _corrupt(uid, "JSON of an unknown format")
    if document.get("uid") != uid or document.get("version") != version:
        raise _corrupt(uid, "a session document of another uid or version")
    parts = (document.get("tasks"), document.get("instances"), document.get("metadata"))
    if not all(isinstance(part, dict) for part in parts):
        raise _corrupt(uid, "a session document with missing parts")
    return SessionBlob(version, *parts)  # type: ignore[arg-type]


def decode_head(uid: str, raw: object) -> int | None:
    if raw is None:
        return None
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    raise _corrupt(uid, f"a version marker {raw!r:.40}")
