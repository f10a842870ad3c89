"""Cache keys: a stable prefix plus a digest of the uid, valid on every cache.

memcached refuses keys over 250 bytes and keys with spaces or control
characters; other caches have limits of their own. A SHA-256 digest of the uid
is 64 hex characters whatever the uid, so every ``str`` uid works everywhere
and two uids never share a key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from triggers.errors import ConfigurationError

__all__ = ["SessionKeys"]

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")


@dataclass(frozen=True)
class SessionKeys:
    """The keys of one session: its head, its lock, its history documents.

    On caches without a compare-and-set (database, file, local memory), the
    head key holds a pointer and each head is a key of its own
    (:meth:`chained_head`). :meth:`legacy_version` is where triggers-cache 0.1
    kept whole-session documents.
    """

    base: str

    @classmethod
    def for_uid(cls, prefix: str, uid: str) -> SessionKeys:
        if not isinstance(prefix, str) or not _PREFIX.match(prefix):
            raise ConfigurationError(
                f"key_prefix={prefix!r}: use 1-64 letters, digits, '_', '.' or '-'"
            )
        digest = hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()
        return cls(f"{prefix}:{digest}")

    @property
    def head(self) -> str:
        return f"{self.base}:head"

    @property
    def lock(self) -> str:
        return f"{self.base}:lock"

    def document(self, token: str) -> str:
        """A history document (segment or index)."""
        return f"{self.base}:d:{token}"

    def chained_head(self, epoch: str, version: int) -> str:
        return f"{self.base}:h:{epoch}:{version}"

    def legacy_version(self, number: int) -> str:
        return f"{self.base}:v{number}"
