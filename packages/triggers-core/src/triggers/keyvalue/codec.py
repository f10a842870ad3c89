"""The stored form of a session in a key-value store: JSON text, never a pickle.

Every value the layout stores is ``str``: a header line, then canonical JSON.
The header says what the document is and which incarnation of the session
(its *epoch*, :data:`triggers.stores.EPOCH`) it belongs to::

    triggers-cache/2 head 3f9c2a7d01b4e6c8 42
    {"history": {...}, "instances": {...}, "metadata": {...}, "tasks": {...}, "uid": "..."}

so that a store can check a head's epoch and version by its first line (the
Redis script does), and so that a document of another session, of another
incarnation of this one, or of another program is recognised as such.
Anything that is not the document expected under a key (a foreign value, a
truncated write, garbage) raises :class:`~triggers.errors.CorruptSessionError`
naming the uid.

The format's name is the one triggers-cache gave it when it introduced the
layout; it stays, so that every session stored since still loads.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from triggers import values
from triggers.errors import CorruptSessionError

__all__ = [
    "FORMAT",
    "OLDER_LAYOUT",
    "PLACEHOLDER",
    "Head",
    "HistoryDoc",
    "Pointer",
    "as_text",
    "corrupt",
    "decode_head",
    "decode_history",
    "decode_pointer",
    "encode_head",
    "encode_index",
    "encode_pointer",
    "encode_segment",
    "head_stamp",
]

FORMAT = "triggers-cache/2"

PLACEHOLDER = f"{FORMAT} placeholder - 0\n{{}}"
"""What a lock holder may put under a missing head: no session, but a value to
compare-and-set against (memcached)."""

OLDER_LAYOUT = "legacy"
"""The epoch of a head read from an older layout (see
:meth:`~triggers.keyvalue.KeyValueStore.load_older_layout`); never stored, as
the first save of such a session starts a new epoch."""


@dataclass(frozen=True)
class Head:
    """What a fire needs: configs, metadata, unfinished instances, and where the history is.

    ``recent`` names the segments written since the newest index document
    ``index`` (oldest first); ``refreshed`` is when (by a writer's clock) every
    history document last had its time to live set, ``None`` without a
    session ttl. A head read from an older layout holds that layout's finished
    instances in ``unsegmented`` (its first save moves them into segments)
    and the keys that layout used in ``leftovers`` (deleted once converted).
    """

    epoch: str
    version: int
    configs: dict[str, Any]
    instances: dict[str, Any]
    metadata: dict[str, Any]
    recent: tuple[str, ...] = ()
    index: str | None = None
    refreshed: float | None = None
    unsegmented: dict[str, Any] = field(default_factory=dict)
    leftovers: tuple[str, ...] = ()

    @property
    def has_history(self) -> bool:
        return bool(self.recent or self.index or self.unsegmented)

    @property
    def is_older_layout(self) -> bool:
        return self.epoch == OLDER_LAYOUT


@dataclass(frozen=True)
class HistoryDoc:
    """A segment (finished instances) or an index (segment names and the previous index)."""

    token: str
    instances: dict[str, Any] | None = None
    segments: tuple[str, ...] = ()
    previous: str | None = None


@dataclass(frozen=True)
class Pointer:
    """Where the latest head is, on stores that keep a chain of immutable heads."""

    epoch: str
    version: int


def head_stamp(epoch: str, version: int) -> str:
    """The first line of a head: what a store's conditional write may compare."""
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
        f"session {uid!r}: the store holds {what} under this session's key, not a session "
        "stored by Triggers; it was left as it is"
    )


def as_text(raw: object) -> object:
    """``raw`` as text when a store's client hands back UTF-8 bytes (redis-py does)."""
    if isinstance(raw, bytes):
        try:
            return raw.decode("utf-8")
        except UnicodeDecodeError:
            return raw
    return raw


def _split(uid: str, raw: object) -> tuple[list[str], dict[str, Any]]:
    """Header fields and JSON body of a stored document, or CorruptSessionError."""
    raw = as_text(raw)
    if isinstance(raw, bytes):
        raise corrupt(uid, "bytes that are not UTF-8 text")
    if not isinstance(raw, str):
        raise corrupt(uid, f"a {type(raw).__name__}")
    header, newline, text = raw.partition("\n")
    fields = header.split(" ")
    if not newline or len(fields) != 4 or not fields[0].startswith("triggers-cache/"):
        raise corrupt(uid, "text that is not a Triggers document")
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


def mapping(uid: str, body: dict[str, Any], name: str) -> dict[str, Any]:
    """``body[name]``, which must be a JSON object."""
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
    history = mapping(uid, body, "history")
    index, refreshed = history.get("index"), history.get("refreshed")
    if not (index is None or isinstance(index, str)) or not (
        refreshed is None or isinstance(refreshed, int | float)
    ):
        raise corrupt(uid, "a head with damaged history references")
    return Head(
        epoch=fields[2],
        version=int(fields[3]),
        configs=mapping(uid, body, "tasks"),
        instances=mapping(uid, body, "instances"),
        metadata=mapping(uid, body, "metadata"),
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
        return HistoryDoc(token, instances=mapping(uid, body, "instances"))
    previous = body.get("previous")
    if not (previous is None or isinstance(previous, str)):
        raise corrupt(uid, "an index document with a damaged reference")
    return HistoryDoc(token, segments=_tokens(uid, body.get("segments")), previous=previous)


def decode_pointer(uid: str, raw: object) -> Pointer:
    fields, _ = _split(uid, raw)
    if fields[1] != "pointer" or not fields[3].isdigit():
        raise corrupt(uid, f"a {fields[1]!r} document where the head pointer belongs")
    return Pointer(fields[2], int(fields[3]))
