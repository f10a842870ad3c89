"""The layout of a session in a key-value store: a small head, and history written once.

A fire needs the task configurations, the metadata and the unfinished
instances; it never needs the finished history. So a session is stored as:

* **the head**: one document holding exactly what a fire needs, plus the
  names of the history documents. Every save replaces it (by a conditional
  write the store makes atomic: :mod:`triggers.keyvalue.chain`, or a store's
  own), so a save writes O(unfinished instances) bytes, whatever the length
  of the history.
* **segments**: the instances a save finished, written once under a random
  name and never changed again. An instance changed after it finished (its
  logs marked resolved, say) is simply written again in a newer segment; the
  newer copy wins.
* **index documents**: once the head names :data:`RECENT_LIMIT` segments, a
  save writes an index document listing them (and naming the previous
  index), and the head names that index instead. The head stays small, every
  document is written once, and reading the whole history walks the indexes
  back to the first.

Every document carries the uid and the session's epoch
(:data:`triggers.stores.EPOCH`): a random name given to each incarnation of a
session. A session whose head was evicted (or expired) loads as a new, empty
session, and its first save starts a new epoch, so documents of the old
incarnation that the store still holds are never read again: old state never
comes back, and nothing an old document holds can block a save. A missing
history document (evicted on its own) cannot be rebuilt: loading the whole
history raises :class:`~triggers.errors.SessionLostError`, while fires, which
need only the head, go on.

This module knows nothing of any store: it turns a loaded head and the core's
:class:`~triggers.storage.SessionChanges` into the documents to write, and
reads history through a ``fetch`` function the store provides.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

from triggers import values
from triggers.errors import SessionLostError
from triggers.keyvalue.codec import Head, decode_history, encode_head, encode_index, encode_segment
from triggers.storage import LoadScope, SessionChanges, StoredSession, is_active_record
from triggers.stores import expiry_due

__all__ = [
    "RECENT_LIMIT",
    "SEGMENT_BYTES",
    "Fetch",
    "Loaded",
    "Plan",
    "history_tokens",
    "new_token",
    "plan_save",
    "read_history",
    "stored_session",
    "wants_history",
]

RECENT_LIMIT = 16
"""Segments the head names before a save folds them into an index document."""

SEGMENT_BYTES = 512_000
"""Largest segment written (a save finishing more is split): well inside memcached's 1 MB items."""

Fetch = Callable[[list[str]], Mapping[str, object]]
"""Reads history documents by token; absent ones are left out of the result."""


def new_token() -> str:
    """A random name for an epoch or a history document."""
    return secrets.token_hex(8)


@dataclass(frozen=True)
class Loaded:
    """A head as a store read it, with what that store's conditional write needs.

    ``condition`` is the store's own (the head pointer on a chain of heads,
    the head's first line on Redis, its CAS unique and the lock's holder on
    memcached). A session object keeps the one of its latest load and hands
    it back with its next save.
    """

    head: Head | None
    condition: Any = None


@dataclass(frozen=True)
class Plan:
    """One save: the new head and its text, the history documents to write first."""

    head: Head
    text: str
    documents: dict[str, str]
    refresh: bool
    """Every history document of the base head must get its time to live again, first."""


def stored_session(head: Head | None, history: Mapping[str, Any] | None) -> StoredSession:
    """What a load returns: the head's instances, over the history when read."""
    if head is None:
        return StoredSession({}, {}, {}, version=None)
    complete = history is not None or not head.has_history
    instances = {**history, **head.instances} if history else head.instances
    return StoredSession(head.configs, instances, head.metadata, head.version, complete)


def wants_history(head: Head | None, scope: LoadScope) -> bool:
    return head is not None and scope == LoadScope.FULL and head.has_history


def plan_save(
    uid: str,
    base: Head | None,
    changes: SessionChanges,
    *,
    now: float,
    session_ttl: float | None,
) -> Plan:
    """The head that ``changes`` make of ``base``, and the history documents it needs.

    A new session, or one read from an older layout, starts a new epoch.
    """
    same = None if base is None or base.is_older_layout else base
    epoch = same.epoch if same else new_token()
    instances = dict(base.instances) if base else {}
    finished = dict(base.unsegmented) if base else {}
    for name, record in changes.instances.items():
        if is_active_record(record):
            instances[name] = record
            finished.pop(name, None)
        else:
            instances.pop(name, None)
            finished[name] = record
    metadata = {k: v for k, v in (base.metadata if base else {}).items() if k not in changes.deleted_metadata}
    metadata.update(changes.metadata)
    recent = list(same.recent) if same else []
    index = same.index if same else None
    documents: dict[str, str] = {}
    for chunk in _chunks(finished, changes.instance_texts):
        token = new_token()
        documents[token] = encode_segment(uid, epoch, token, chunk)
        recent.append(token)
        if len(recent) >= RECENT_LIMIT:
            token = new_token()
            documents[token] = encode_index(uid, epoch, token, recent, index)
            index, recent = token, []
    due = same is None or expiry_due(same.refreshed, now, session_ttl)
    head = Head(
        epoch=epoch,
        version=changes.new_version,
        configs={**(base.configs if base else {}), **changes.configs},
        instances=instances,
        metadata=metadata,
        recent=tuple(recent),
        index=index,
        refreshed=None if session_ttl is None else (now if due or same is None else same.refreshed),
    )
    refresh = session_ttl is not None and same is not None and due and bool(same.recent or same.index)
    return Plan(head, encode_head(uid, head), documents, refresh)


def _chunks(records: dict[str, Any], texts: Mapping[str, str]) -> Iterator[dict[str, Any]]:
    """``records`` in segments of at most :data:`SEGMENT_BYTES` (a bigger record goes alone).

    A record's size is that of its canonical JSON, as the core computed it
    for the save (``texts``) or, for a record converted from an older
    layout, computed here.
    """
    chunk: dict[str, Any] = {}
    size = 0
    for name in sorted(records):
        record = records[name]
        text = texts.get(name)
        if text is None:
            text = values.canonical_json(record)
        record_size = len(text.encode("utf-8")) + len(name) + 8
        if chunk and size + record_size > SEGMENT_BYTES:
            yield chunk
            chunk, size = {}, 0
        chunk[name] = record
        size += record_size
    if chunk:
        yield chunk


def _walk(uid: str, head: Head, fetch: Fetch, *, segments: bool) -> Iterator[tuple[str, object, bool]]:
    """Every history document of ``head``: ``(token, raw or None, is an index)``, newest first.

    Index documents are read one after the other (each names the previous
    one); the segments an index names are read in the same request as the
    index before it. Without ``segments``, only the index documents are read
    (the segments are reported with ``raw`` ``None``).
    """
    group, following = list(head.recent), head.index
    while True:
        wanted = (group if segments else []) + ([following] if following else [])
        found = fetch(wanted) if wanted else {}
        for token in reversed(group):
            yield token, found.get(token), False
        if following is None:
            return
        raw = found.get(following)
        yield following, raw, True
        if raw is None:
            return  # the rest of the chain cannot be reached
        doc = decode_history(uid, head.epoch, following, raw, "index")
        group, following = list(doc.segments), doc.previous


def read_history(uid: str, head: Head, fetch: Fetch) -> dict[str, Any]:
    """Every finished instance of ``head``'s session, or :class:`SessionLostError`."""
    if head.is_older_layout:
        return dict(head.unsegmented)
    segments: list[dict[str, Any]] = []
    missing = 0
    for token, raw, is_index in _walk(uid, head, fetch, segments=True):
        if raw is None:
            missing += 1
        elif not is_index:
            segments.append(decode_history(uid, head.epoch, token, raw, "segment").instances or {})
    if missing:
        raise SessionLostError(
            f"session {uid!r}: {missing} document(s) of its finished history are no longer "
            "stored (evicted or expired), so the whole session cannot be loaded. Its "
            "configurations, metadata and unfinished instances are intact and fires go on; "
            "give the store enough memory and no eviction policy"
        )
    history: dict[str, Any] = {}
    for instances in reversed(segments):  # oldest first: newer copies win
        history.update(instances)
    return history


def history_tokens(uid: str, head: Head, fetch: Fetch) -> list[str]:
    """The names of every history document ``head`` reaches (to set their time to live)."""
    return [
        token for token, raw, is_index in _walk(uid, head, fetch, segments=False)
        if raw is not None or not is_index
    ]
