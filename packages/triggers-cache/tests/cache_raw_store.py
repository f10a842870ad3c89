"""Raw access to the keys triggers-cache stores in a Django cache, for tests that damage stored data.

Used by this package's conformance tests (the suite's ``raw_store`` hook) and
by the reliability suite's corruption scenario, which imports it from here:
the knowledge of the backend's stored layout stays next to the backend.
"""

from __future__ import annotations

from typing import Any

__all__ = ["CacheRawStore"]


class CacheRawStore:
    """The keys triggers-cache uses for a session in one Django cache, through its store.

    The snapshot is the head (on caches without compare-and-set, the pointer
    and the heads it leads to) and every history document it names. Every
    kind replaces the head document: ``garbage`` with bytes, ``truncated``
    with its first half, ``foreign_version`` with the same document under a
    format this library does not know.
    """

    def __init__(self, options: dict[str, Any]) -> None:
        self.options = options

    def _store(self, uid: str) -> Any:
        from triggers_cache import CacheStorageBackend

        return CacheStorageBackend(uid, **self.options).store

    def _head_key(self, store: Any, uid: str) -> str:
        keys = store.keys_for(uid)
        head = store.heads.load(uid, keys).head
        assert head is not None, f"session {uid!r} is not stored"
        return str(store.heads.head_key(keys, head))

    def snapshot(self, uid: str) -> Any:
        from triggers.keyvalue.codec import decode_head, decode_pointer
        from triggers.keyvalue.layout import history_tokens

        store = self._store(uid)
        keys = store.keys_for(uid)
        stored = {"head": store.get(keys.head)}
        try:
            head = decode_head(uid, stored["head"])
        except Exception:
            try:  # a chained cache: the pointer, then the heads it may lead to
                pointer = decode_pointer(uid, stored["head"])
            except Exception:
                return stored
            for version in range(max(1, pointer.version - 2), pointer.version + 8):
                name = keys.chained_head(pointer.epoch, version)
                stored[name] = store.get(name)
            return stored
        if head is not None:
            for token in history_tokens(uid, head, lambda tokens: store.fetch(keys, tokens)):
                stored[token] = store.get(keys.document(token))
        return stored

    def damage(self, uid: str, kind: str) -> None:
        store = self._store(uid)
        key = self._head_key(store, uid)
        raw = store.get(key)
        document = raw.decode() if isinstance(raw, bytes) else str(raw)
        if kind == "garbage":
            damaged: Any = b"\x00\xff\xfe garbage \x80"
        elif kind == "truncated":
            damaged = document[: len(document) // 2]
        else:
            damaged = document.replace("triggers-cache/2", "triggers-cache/999", 1)
        store.set(key, damaged, None)
