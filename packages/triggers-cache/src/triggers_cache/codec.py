"""The stored form of a session: JSON text made by this library, never a pickle.

Every value this library stores is ``str``: a header line, then canonical
JSON. The header says what the document is and which incarnation of the
session (its *epoch*) it belongs to::

    triggers-cache/2 head 3f9c2a7d01b4e6c8 42
    {"history": {...}, "instances": {...}, "metadata": {...}, "tasks": {...}, "uid": "..."}

so that the Redis script can check a head's epoch and version by its first
line, and so that a document of another session, of another incarnation of
this one, or of another program is recognised as such. Anything that is not
the document expected under a key (a foreign value, a truncated write,
garbage) raises :class:`~triggers.errors.CorruptSessionError` naming the uid.

Sessions written by triggers-cache 0.1 (layout 1: a version number under the
head key, the whole session in one document per version) are still read:
:func:`decode_legacy` and :func:`legacy_version`.
"""

from __future__ import annotations

import io
import json
import pickle
from dataclasses import dataclass, field
from typing import Any

from triggers import values
from triggers.errors import CorruptSessionError
from triggers.storage import is_active_record

__all__ = [
    "FORMAT",
    "PLACEHOLDER",
    "Head",
    "HistoryDoc",
    "Pointer",
    "corrupt",
    "decode_head",
    "decode_history",
    "decode_legacy",
    "decode_pointer",
    "encode_head",
    "encode_index",
    "encode_pointer",
    "encode_segment",
    "head_stamp",
    "legacy_version",
    "plain",
]

FORMAT = "triggers-cache/2"
LEGACY_FORMAT = "triggers-cache/1"

PLACEHOLDER = f"{FORMAT} placeholder - 0\n{{}}"
"""What a lock holder puts under a missing head (memcached): no session, but a CAS to bump."""


@dataclass(frozen=True)
class Head:
    """What a fire needs: configs, metadata, unfinished instances, and where the history is.

    ``recent`` names the segments written since the newest index document
    ``index`` (oldest first); ``refreshed`` is when (by a writer's clock) every
    history document last had its time to live set, ``None`` without a timeout.
    ``legacy`` holds the finished instances of a session read from layout 1,
    which the first save moves into segments.
    """

    epoch: str
    version: int
    configs: dict[str, Any]
    instances: dict[str, Any]
    metadata: dict[str, Any]
    recent: tuple[str, ...] = ()
    index: str | None = None
    refreshed: float | None = None
    legacy: dict[str, Any] = field(default_factory=dict)

    @property
    def has_history(self) -> bool:
        return bool(self.recent or self.index or self.legacy)


@dataclass(frozen=True)
class HistoryDoc:
    """A segment (finished instances) or an index (segment names and the previous index)."""

    token: str
    instances: dict[str, Any] | None = None
    segments: tuple[str, ...] = ()
    previous: str | None = None


@dataclass(frozen=True)
class Pointer:
    """Where the latest head is, on caches that keep a chain of immutable heads."""

    epoch: str
    version: int


def head_stamp(epoch: str, version: int) -> str:
    """The first line of a head: what the Redis script compares."""
    return f"{FORMAT} head {epoch} {version}\n"


def _document(kind: str, epoch: str, name: object, body: dict[str, Any]) -> str:
    return f"{FORMAT} {kind} {epoch} {name}\n{values.canonical_json(body)}"


def encode_head(uid: str, head: Head) -> str:
    history = {"recent": list(head.recent), "index": head.index, "refreshed": head.refreshed}
    body = {
        "uid": uid,
        "tasks": head.configs,
        "instances": head.instances,
        "metadata": head.metadata,
        "history": history,
    }
    return _document("head", head.epoch, head.version, body)


def encode_segment(uid: str, epoch: str, token: str, instances: dict[str, Any]) -> str:
    return _document("segment", epoch, token, {"uid": uid, "instances": instances})


def encode_index(uid: str, epoch: str, token: str, segments: list[str], previous: str | None) -> str:
    return _document("index", epoch, token, {"uid": uid, "segments": segments, "previous": previous})


def encode_pointer(uid: str, pointer: Pointer) -> str:
    return _document("pointer", pointer.epoch, pointer.version, {"uid": uid})


def corrupt(uid: str, what: str) -> CorruptSessionError:
    return CorruptSessionError(
        f"session {uid!r}: the cache holds {what} under this session's key, not a session "
        "stored by triggers-cache; it was left as it is"
    )


def _split(uid: str, raw: object) -> tuple[list[str], dict[str, Any]]:
    """Header fields and JSON body of a stored document, or CorruptSessionError."""
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise corrupt(uid, "bytes that are not UTF-8 text") from None
    if not isinstance(raw, str):
        raise corrupt(uid, f"a {type(raw).__name__}")
    header, newline, text = raw.partition("\n")
    fields = header.split(" ")
    if not newline or len(fields) != 4 or not fields[0].startswith("triggers-cache/"):
        raise corrupt(uid, "text that is not a triggers-cache document")
    if fields[0] != FORMAT:
        raise corrupt(uid, f"a document of an unknown format {fields[0]!r:.40}")
    try:
        body = json.loads(text)
    except ValueError:
        raise corrupt(uid, "a document whose JSON is damaged") from None
    if not isinstance(body, dict):
        raise corrupt(uid, "a document whose JSON is not an object")
    if fields[1] != "placeholder" and body.get("uid") != uid:
        raise corrupt(uid, "a document of another session")
    return fields, body


def _mapping(uid: str, body: dict[str, Any], name: str) -> dict[str, Any]:
    part = body.get(name)
    if not isinstance(part, dict):
        raise corrupt(uid, f"a document without its {name!r}")
    return part


def _tokens(uid: str, part: object) -> tuple[str, ...]:
    if not isinstance(part, list) or not all(isinstance(t, str) for t in part):
        raise corrupt(uid, "a document with a damaged list of history documents")
    return tuple(part)


def decode_head(uid: str, raw: object) -> Head | None:
    """The head stored under the head key; ``None`` for a lock holder's placeholder."""
    fields, body = _split(uid, raw)
    if fields[1] == "placeholder":
        return None
    if fields[1] != "head" or not fields[3].isdigit():
        raise corrupt(uid, f"a {fields[1]!r} document where the head belongs")
    history = _mapping(uid, body, "history")
    index, refreshed = history.get("index"), history.get("refreshed")
    if not (index is None or isinstance(index, str)) or not (
        refreshed is None or isinstance(refreshed, int | float)
    ):
        raise corrupt(uid, "a head with damaged history references")
    return Head(
        epoch=fields[2],
        version=int(fields[3]),
        configs=_mapping(uid, body, "tasks"),
        instances=_mapping(uid, body, "instances"),
        metadata=_mapping(uid, body, "metadata"),
        recent=_tokens(uid, history.get("recent")),
        index=index,
        refreshed=None if refreshed is None else float(refreshed),
    )


def decode_history(uid: str, epoch: str, token: str, raw: object, kind: str) -> HistoryDoc:
    """The ``kind`` document (``segment`` or ``index``) named ``token`` of incarnation ``epoch``."""
    fields, body = _split(uid, raw)
    if fields[2] != epoch or fields[3] != token or fields[1] != kind:
        raise corrupt(uid, f"a {fields[1]!r} document where {kind} {token} belongs")
    if fields[1] == "segment":
        return HistoryDoc(token, instances=_mapping(uid, body, "instances"))
    previous = body.get("previous")
    if not (previous is None or isinstance(previous, str)):
        raise corrupt(uid, "an index document with a damaged reference")
    return HistoryDoc(token, segments=_tokens(uid, body.get("segments")), previous=previous)


def decode_pointer(uid: str, raw: object) -> Pointer:
    fields, _ = _split(uid, raw)
    if fields[1] != "pointer" or not fields[3].isdigit():
        raise corrupt(uid, f"a {fields[1]!r} document where the head pointer belongs")
    return Pointer(fields[2], int(fields[3]))


# -- layout 1 (triggers-cache 0.1) ----------------------------------------------


class _PrimitivesOnly(pickle.Unpickler):
    """Unpickles strings and numbers only: no class is ever looked up, so nothing runs."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} refused")


def plain(raw: object) -> object:
    """A value layout 1 stored through Django's API, as Django's client would return it.

    Text on memcached and the other caches; on Redis a pickled ``str``, read
    here without ever looking up a class (so nothing in it can run).
    """
    if isinstance(raw, bytes) and raw[:1] == b"\x80":
        try:
            return _PrimitivesOnly(io.BytesIO(raw)).load()
        except Exception:
            return raw
    return raw


def legacy_version(raw: object) -> int | None:
    """The version number under the head key of a layout-1 session, else ``None``."""
    raw = plain(raw)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def decode_legacy(uid: str, raw: object, version: int) -> Head:
    """A layout-1 session document: its unfinished instances, and its finished ones in ``legacy``."""
    raw = plain(raw)
    if not isinstance(raw, str):
        raise corrupt(uid, f"a {type(raw).__name__}")
    try:
        document = json.loads(raw)
    except ValueError:
        raise corrupt(uid, "text that is not JSON") from None
    if not isinstance(document, dict) or document.get("format") != LEGACY_FORMAT:
        raise corrupt(uid, "JSON of an unknown format")
    if document.get("uid") != uid or document.get("version") != version:
        raise corrupt(uid, "a session document of another uid or version")
    instances = _mapping(uid, document, "instances")
    active = {n: r for n, r in instances.items() if isinstance(r, dict) and is_active_record(r)}
    return Head(
        epoch="legacy",
        version=version,
        configs=_mapping(uid, document, "tasks"),
        instances=active,
        metadata=_mapping(uid, document, "metadata"),
        legacy={n: r for n, r in instances.items() if n not in active},
    )

