"""The backend's options, checked, and what they bind to in one process.

Bad options raise :class:`ConfigurationError` naming the option, when the
store is made (nothing connects until first use).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from pymongo import MongoClient, WriteConcern
from pymongo.collection import Collection
from pymongo.errors import InvalidName, PyMongoError

from triggers.errors import ConfigurationError, hide_passwords
from triggers.stores import validated_session_ttl
from triggers_mongo import clients, layout

__all__ = ["Bound", "bind", "refuse_renamed", "session_ttl", "transactions"]

Document = dict[str, Any]

_NAME = re.compile(r"[A-Za-z0-9_]{1,60}\Z")

_LONGEST_SESSION_TTL = 1e10


@dataclass(frozen=True)
class Bound:
    """What a store uses in its process: the client and its collection."""

    client: MongoClient[Document]
    where: str
    write_concern: WriteConcern
    collection: Collection[Document]


def bind(url: str | None, client: MongoClient[Document] | None, database: str, name: str) -> Bound:
    """This process's client (one per URL, see :mod:`.clients`) and the collection, journaled."""
    chosen, where = _client(url, client)
    concern = _journaled(chosen.write_concern)
    collection = _collection(chosen, database, name).with_options(write_concern=concern)
    return Bound(chosen, where, concern, collection)


def session_ttl(value: object) -> float | None:
    """Core's ``session_ttl`` (:func:`~triggers.stores.validated_session_ttl`), and at most
    ``1e10`` s (about 300 years): expiry dates reach ``2 * session_ttl`` ahead, and a
    date past the year 9999 cannot be written."""
    seconds = validated_session_ttl(value)
    if seconds is not None and seconds > _LONGEST_SESSION_TTL:
        raise ConfigurationError(
            f"session_ttl must be at most {_LONGEST_SESSION_TTL:g} seconds (about 300 years), "
            f"or None for sessions that never expire; not {value!r}"
        )
    return seconds


def refuse_renamed(options: Mapping[str, object]) -> None:
    """Refuse ``ttl``, the old name of ``session_ttl``, saying so (not as just unknown)."""
    if "ttl" in options:
        raise ConfigurationError("the mongo backend's option ttl is now named session_ttl")


def transactions(option: object) -> Literal["auto", "on", "off"]:
    if option == "auto":
        return "auto"
    if option == "on":
        return "on"
    if option == "off":
        return "off"
    raise ConfigurationError(f"transactions= must be 'auto', 'on' or 'off', not {option!r}")


def _journaled(concern: WriteConcern) -> WriteConcern:
    """The client's write concern, plus ``j: true`` unless it says ``j`` (or ``w: 0``) itself.

    A save is acknowledged to the application as done; with ``j: false`` a
    server crash right after can still lose it (SecantusDB did, see
    docs/backends/mongo.md), and a lost save also takes the fence back.
    """
    document = dict(concern.document)
    if "j" in document or document.get("w") == 0:
        return concern
    return WriteConcern(**document, j=True)


def _client(
    url: str | None, client: MongoClient[Document] | None
) -> tuple[MongoClient[Document], str]:
    if (url is None) == (client is None):
        raise ConfigurationError(
            "the mongo backend needs exactly one of url= (a MongoDB connection string, e.g. "
            "'mongodb://localhost:27017') or client= (an existing pymongo MongoClient)"
        )
    if client is not None:
        if not isinstance(client, MongoClient):
            raise ConfigurationError(
                f"client= must be a pymongo MongoClient, got {type(client).__name__}"
            )
        return client, "(the given client)"
    if not isinstance(url, str):
        raise ConfigurationError(f"url= must be a str, got {type(url).__name__}")
    try:
        return clients.client_for(url), hide_passwords(url)
    except (PyMongoError, ValueError, TypeError) as error:
        raise ConfigurationError(
            f"url={hide_passwords(url)!r} is not usable: {hide_passwords(str(error))}"
        ) from error


def _collection(client: MongoClient[Document], database: str, name: str) -> Collection[Document]:
    if not isinstance(database, str) or not database:
        raise ConfigurationError(f"database= must be a non-empty str, not {database!r}")
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigurationError(f"collection={name!r}: use 1-60 letters, digits or underscores")
    try:
        db = client[database]
    except InvalidName as error:
        raise ConfigurationError(f"database={database!r} is not a valid name: {error}") from error
    return db[layout.collection_names(name).sessions]
