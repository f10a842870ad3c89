"""A whole session as one versioned JSON document, and writing one into a store.

The document (what ``triggers export`` writes and ``triggers import`` reads)::

    {"format": "triggers-session", "version": 1, "uid": "...",
     "tasks": {name: config record}, "instances": {name: instance record},
     "metadata": {key: encoded value}}

Records and values are in their stored form (:meth:`TaskConfig.to_mapping`,
:meth:`TaskInstance.to_mapping`, :func:`triggers.values.encode`), so
datetimes and every other value of the domain survive exactly, and no store's
own layout leaks into the file. ``triggers migrate`` copies sessions with the
same two functions, without the file.

Several sessions travel as one bundle (``triggers export UID UID ...``)::

    {"format": "triggers-sessions", "version": 1, "sessions": [document, ...]}
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triggers import values
from triggers.errors import TriggersError
from triggers.storage import TriggerStorageBackend
from triggers.types import TaskConfig

__all__ = [
    "BUNDLE_FORMAT",
    "FORMAT",
    "VERSION",
    "DocumentError",
    "MissingSessionError",
    "SessionDocument",
    "SessionExistsError",
    "bundle_to_json",
    "document_from_json",
    "document_of",
    "load_document",
    "load_documents",
    "read_session",
    "write_session",
]

FORMAT = "triggers-session"
VERSION = 1
BUNDLE_FORMAT = "triggers-sessions"
"""The format of a document holding several sessions (each a ``FORMAT`` document)."""


class SessionExistsError(TriggersError):
    """The destination already holds a different session (and may not be replaced)."""


class MissingSessionError(TriggersError, LookupError):
    """No session is stored under the uid (a command needs one that exists)."""


class DocumentError(TriggersError, ValueError):
    """A session document is malformed, or of a format or version this release cannot read."""


@dataclass(frozen=True)
class SessionDocument:
    """One session in stored form: what is exported, imported and migrated."""

    uid: str
    tasks: Mapping[str, Any]
    instances: Mapping[str, Any]
    metadata: Mapping[str, Any]

    @property
    def is_empty(self) -> bool:
        """True for a session that was never saved (nothing in it)."""
        return not (self.tasks or self.instances or self.metadata)

    def to_json(self) -> dict[str, Any]:
        """The document as written to a file (format and version first)."""
        return {
            "format": FORMAT,
            "version": VERSION,
            "uid": self.uid,
            "tasks": dict(self.tasks),
            "instances": dict(self.instances),
            "metadata": dict(self.metadata),
        }

    def content(self) -> str:
        """Canonical JSON of tasks, instances and metadata (the uid left out).

        Two sessions with equal content are the same session, whatever store
        holds them: this is what ``migrate`` compares to skip and to verify.
        """
        return values.canonical_json(
            {"tasks": dict(self.tasks), "instances": dict(self.instances), "metadata": dict(self.metadata)}
        )


def read_session(storage: TriggerStorageBackend) -> SessionDocument:
    """The whole session held by ``storage``, freshly loaded from its store."""
    storage.invalidate_cache()
    return document_of(storage)


def document_of(storage: TriggerStorageBackend) -> SessionDocument:
    """The whole session as ``storage`` has it loaded (loading what is missing)."""
    whole = storage.debug_repr()
    return SessionDocument(
        uid=storage.uid, tasks=whole["tasks"], instances=whole["instances"], metadata=whole["metadata"]
    )


def document_from_json(data: Any, source: str) -> SessionDocument:
    """Check a parsed document and return it; errors name ``source`` and the field."""
    if not isinstance(data, dict):
        raise DocumentError(f"{source}: not a session document (a JSON object was expected)")
    if data.get("format") != FORMAT:
        raise DocumentError(f"{source}: not a session document (format is {data.get('format')!r}, "
                            f"expected {FORMAT!r})")
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise DocumentError(f"{source}: 'version' must be an integer, not {version!r}")
    if version > VERSION:
        raise DocumentError(f"{source}: document version {version} was written by a newer "
                            f"release of triggers; this one reads version {VERSION}")
    if version < 1:
        raise DocumentError(f"{source}: unknown document version {version}")
    uid = data.get("uid")
    if not isinstance(uid, str) or not uid:
        raise DocumentError(f"{source}: 'uid' must be a non-empty string, not {uid!r}")
    parts: dict[str, dict[str, Any]] = {}
    for part in ("tasks", "instances", "metadata"):
        found = data.get(part, {})
        if not isinstance(found, dict):
            raise DocumentError(f"{source}: {part!r} must be an object, not {type(found).__name__}")
        parts[part] = found
    unknown = sorted(set(data) - {"format", "version", "uid", "tasks", "instances", "metadata"})
    if unknown:
        raise DocumentError(f"{source}: unknown fields {unknown}")
    return SessionDocument(uid=uid, **parts)


def load_document(text: str, source: str) -> SessionDocument:
    """Parse and check a document's JSON text."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{source}: not valid JSON: {exc}") from None
    return document_from_json(data, source)


def load_documents(text: str, source: str) -> list[SessionDocument]:
    """Parse a session document or a bundle of them; the sessions it holds, in order."""
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise DocumentError(f"{source}: not valid JSON: {exc}") from None
    if not (isinstance(data, dict) and data.get("format") == BUNDLE_FORMAT):
        return [document_from_json(data, source)]
    version = data.get("version")
    if version != VERSION or isinstance(version, bool):
        raise DocumentError(f"{source}: bundle version {version!r} is not one this release reads "
                            f"({VERSION})")
    sessions = data.get("sessions")
    if not isinstance(sessions, list):
        raise DocumentError(f"{source}: 'sessions' must be a list of session documents")
    unknown = sorted(set(data) - {"format", "version", "sessions"})
    if unknown:
        raise DocumentError(f"{source}: unknown fields {unknown}")
    documents = [document_from_json(item, f"{source} sessions[{index}]")
                 for index, item in enumerate(sessions)]
    uids = [document.uid for document in documents]
    repeated = sorted({uid for uid in uids if uids.count(uid) > 1})
    if repeated:
        raise DocumentError(f"{source}: the bundle holds the sessions {repeated} more than once")
    return documents


def bundle_to_json(documents: list[SessionDocument]) -> dict[str, Any]:
    """Several sessions as one bundle document (format ``triggers-sessions``)."""
    return {"format": BUNDLE_FORMAT, "version": VERSION,
            "sessions": [document.to_json() for document in documents]}


def write_session(
    storage: TriggerStorageBackend, document: SessionDocument, *, replace: bool = False
) -> SessionDocument | None:
    """Make the session held by ``storage`` equal to ``document``, in one locked save.

    Refuses (:class:`SessionExistsError`) when the destination already holds a
    different session, unless ``replace``; returns ``None`` without writing
    when it already holds the same one, else the document it replaced (empty
    for a new session). Stores cannot delete tasks or instances, so even
    ``replace`` refuses a destination holding ones the document lacks.
    Everything is validated before the save: a bad document writes nothing.
    """
    try:
        configs = {name: TaskConfig.from_stored(name, record) for name, record in document.tasks.items()}
        metadata = values.decode(dict(document.metadata), "metadata")
    except (ValueError, TypeError, AttributeError) as exc:
        raise DocumentError(f"session {document.uid!r}: {exc}") from exc
    if not isinstance(metadata, dict):  # pragma: no cover - decode keeps a dict a dict
        raise DocumentError(f"session {document.uid!r}: metadata must be an object")
    with storage.acquire_lock():
        before = document_of(storage)  # as the lock just loaded it
        if before.content() == document.content():
            return None
        if not before.is_empty:
            if not replace:
                raise SessionExistsError(
                    f"session {storage.uid!r} already exists at the destination and differs; "
                    "pass --replace to overwrite it"
                )
            _check_replaceable(storage.uid, before, document)
        try:
            storage.update_configuration(configs)
            for name, record in document.instances.items():
                storage.restore_instance(name, record)
            storage.metadata.clear()
            storage.metadata.update(metadata)
        except (ValueError, TypeError) as exc:  # an instance record that cannot be decoded
            raise DocumentError(str(exc)) from exc
        storage.save()
        return before


def _check_replaceable(uid: str, before: SessionDocument, document: SessionDocument) -> None:
    extra_tasks = sorted(set(before.tasks) - set(document.tasks))
    extra_instances = sorted(set(before.instances) - set(document.instances))
    if extra_tasks or extra_instances:
        extra = [*(f"task {name!r}" for name in extra_tasks),
                 *(f"instance {name!r}" for name in extra_instances)]
        shown = ", ".join(extra[:5]) + (f" and {len(extra) - 5} more" if len(extra) > 5 else "")
        raise SessionExistsError(
            f"session {uid!r}: cannot replace it, the destination holds {shown} that the "
            "document lacks and stores never delete tasks or instances; use a new uid"
        )

