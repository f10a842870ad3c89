"""A session's keys: a stable prefix plus a digest of the uid, valid on every key-value store.

memcached refuses keys over 250 bytes and keys with spaces or control
characters; other stores have limits of their own. A SHA-256 digest of the uid
is 64 hex characters whatever the uid, so every ``str`` uid works everywhere
and two uids never share a key.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from triggers.errors import ConfigurationError

__all__ = ["SessionKeys", "checked_prefix"]

_PREFIX = re.compile(r"[A-Za-z0-9_.\-]{1,64}\Z")


def checked_prefix(prefix: object) -> str:
    """``key_prefix`` as given, or :class:`ConfigurationError` naming it."""
    if not isinstance(prefix, str) or not _PREFIX.match(prefix):
        raise ConfigurationError(f"key_prefix={prefix!r}: use 1-64 letters, digits, '_', '.' or '-'")
    return prefix


@dataclass(frozen=True)
class SessionKeys:
    """The keys of one session: its head, its lock, its history documents.

    On stores that keep a chain of heads (:mod:`triggers.keyvalue.chain`) the
    head key holds a pointer and each head is a key of its own
    (:meth:`chained_head`).
    """

    base: str

    @classmethod
    def for_uid(cls, prefix: str, uid: str) -> SessionKeys:
        digest = hashlib.sha256(uid.encode("utf-8", "surrogatepass")).hexdigest()
        return cls(f"{checked_prefix(prefix)}:{digest}")

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
