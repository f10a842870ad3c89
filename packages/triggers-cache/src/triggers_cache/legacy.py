"""Sessions stored by triggers-cache 0.1 (layout 1), read and converted by their next save.

0.1 kept a version number under the head key and the whole session in one
JSON document per version (``…:v<N>``), written through Django's API. Such a
session loads as a head of the older layout
(:data:`~triggers.keyvalue.codec.OLDER_LAYOUT`): its unfinished instances in
the head, its finished ones ``unsegmented``, and its keys ``leftovers``, which
the save that converts it deletes.
"""

from __future__ import annotations

import io
import json
import pickle
from typing import Any

from triggers.keyvalue.codec import OLDER_LAYOUT, Head, corrupt, mapping
from triggers.keyvalue.keys import SessionKeys
from triggers.keyvalue.layout import Fetch
from triggers.storage import is_active_record

__all__ = ["LEGACY_FORMAT", "legacy_key", "legacy_version", "load_legacy"]

LEGACY_FORMAT = "triggers-cache/1"


def legacy_key(keys: SessionKeys, number: int) -> str:
    """Where 0.1 kept the whole session as of version ``number``."""
    return f"{keys.base}:v{number}"


class _PrimitivesOnly(pickle.Unpickler):
    """Unpickles strings and numbers only: no class is ever looked up, so nothing runs."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"{module}.{name} refused")


def _plain(raw: object) -> object:
    """A value 0.1 stored through Django's API, as Django's client would return it.

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
    """The version number under the head key of a 0.1 session, else ``None``."""
    raw = _plain(raw)
    if isinstance(raw, bytes):
        raw = raw.decode("ascii", "replace")
    if isinstance(raw, str) and raw.isascii() and raw.isdigit():
        return int(raw)
    return None


def load_legacy(uid: str, keys: SessionKeys, version: int, read: Fetch) -> Head | None:
    """A session 0.1 stored, or ``None`` if its documents are gone.

    As 0.1's readers did, the newest of the versions that follow the head's
    number without a gap is the session (saves that crashed before moving
    the head left later ones).
    """
    names = [legacy_key(keys, version + step) for step in range(8)]
    found = read(names)
    latest = None
    for step, name in enumerate(names):
        if found.get(name) is None:
            break
        latest = step
    if latest is None:
        return None
    leftovers = tuple(legacy_key(keys, v) for v in range(max(1, version - 9), version + 8))
    return _decode(uid, found[names[latest]], version + latest, leftovers)


def _decode(uid: str, raw: object, version: int, leftovers: tuple[str, ...]) -> Head:
    """A 0.1 session document: its unfinished instances in the head, its finished ones unsegmented."""
    raw = _plain(raw)
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
    instances = mapping(uid, document, "instances")
    active = {n: r for n, r in instances.items() if isinstance(r, dict) and is_active_record(r)}
    return Head(
        epoch=OLDER_LAYOUT,
        version=version,
        configs=mapping(uid, document, "tasks"),
        instances=active,
        metadata=mapping(uid, document, "metadata"),
        unsegmented={n: r for n, r in instances.items() if n not in active},
        leftovers=leftovers,
    )
