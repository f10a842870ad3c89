"""The value domain and its codec.

Everything a session stores (trigger kwargs, instance metadata, ``withParams``,
extra directives, session metadata) must lie in one value domain, identical on
every backend:

* ``None``, ``bool``, ``int`` (signed 64-bit), finite ``float``;
* ``str`` (any Unicode text that UTF-8 can encode: lone surrogates are refused);
* ``list`` (tuples are accepted and come back as lists);
* ``dict`` with ``str`` keys of any shape (``""``, ``"$x"``, ``"a.b"``);
* timezone-aware ``datetime`` (returned as aware UTC; naive ones are refused
  because their meaning depends on the machine that reads them).

Anything else is refused with :class:`~triggers.errors.ValueDomainError` (a
``ValueError``) or :class:`~triggers.errors.UnsupportedValueError` (also a
``TypeError``) naming the offending path, *before* anything is written.

:func:`encode` turns a domain value into plain JSON data that any store can
hold (SQL JSON columns, BSON, DynamoDB maps, JSON text). Datetimes become
``{"$datetime": "<ISO 8601 UTC>"}``; so that a user's own ``"$..."`` keys can
never be mistaken for such a tag, every dict key that starts with ``$`` is
escaped with one more ``$`` (``"$x"`` is stored as ``"$$x"``). :func:`decode`
reverses both. Nothing is ever pickled.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, TypeAlias

from triggers.errors import UnsupportedValueError, ValueDomainError

__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "MAX_DEPTH",
    "JSONValue",
    "canonical_json",
    "check",
    "decode",
    "dumps",
    "encode",
    "escape_key",
    "loads",
    "normalize",
]

JSONValue: TypeAlias = bool | int | float | str | list["JSONValue"] | dict[str, "JSONValue"] | None
"""Plain JSON data, as produced by :func:`encode`."""

INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

MAX_DEPTH = 64
"""Deepest nesting of lists and dicts accepted inside one value.

Stores nest our records a few levels deeper still (MongoDB allows 100 levels,
DynamoDB 32 for native maps), so the domain stops well before any of them; it
also turns a reference cycle into a clear error instead of a RecursionError.
"""

_DATETIME_TAG = "$datetime"


def _describe(value: object) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _child(path: str, key: object) -> str:
    return f"{path}[{key!r}]"


def encode(value: object, path: str = "value", *, depth: int = 0) -> JSONValue:
    """Validate ``value`` against the domain and return its JSON form.

    ``path`` names the value in error messages (for example
    ``"instance 't_x#0' kwargs"``); the path inside the value is appended.
    ``depth`` is how deeply the value will be nested once stored (fired kwargs
    sit one level inside an instance's kwargs), so that a value accepted now
    can always be stored later.
    """
    return _encode(value, path, depth)


def _encode(value: object, path: str, depth: int) -> JSONValue:
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            raise ValueDomainError(
                f"{path}: integer {value} is outside the signed 64-bit range", path
            )
        return int(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueDomainError(f"{path}: float {value!r} is not finite", path)
        return float(value)
    if isinstance(value, str):
        _check_text(value, path)
        return str(value)
    if isinstance(value, datetime):
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueDomainError(
                f"{path}: naive datetime {value.isoformat()} is ambiguous; "
                "attach a timezone (e.g. datetime.now(timezone.utc))",
                path,
            )
        try:
            moment = value.astimezone(UTC)
        except OverflowError:
            raise ValueDomainError(
                f"{path}: datetime {value.isoformat()} is outside the range UTC can represent", path
            ) from None
        return {_DATETIME_TAG: moment.isoformat()}
    if isinstance(value, list | tuple):
        if depth >= MAX_DEPTH:
            raise ValueDomainError(f"{path}: nested deeper than {MAX_DEPTH} levels", path)
        return [_encode(item, _child(path, index), depth + 1) for index, item in enumerate(value)]
    if isinstance(value, Mapping):
        if depth >= MAX_DEPTH:
            raise ValueDomainError(f"{path}: nested deeper than {MAX_DEPTH} levels", path)
        encoded: dict[str, JSONValue] = {}
        for key, item in value.items():
            if not isinstance(key, str):
                raise UnsupportedValueError(
                    f"{path}: dict key {key!r} is a {_describe(key)}; only str keys can be stored",
                    path,
                )
            _check_text(key, f"{path} key")
            encoded[escape_key(key)] = _encode(item, _child(path, key), depth + 1)
        return encoded
    raise UnsupportedValueError(
        f"{path}: {_describe(value)} is not storable (allowed: None, bool, int, float, str, "
        "list, tuple, dict with str keys, timezone-aware datetime)",
        path,
    )


def escape_key(key: str) -> str:
    """A dict key as stored: ``"$x"`` becomes ``"$$x"``, so no key reads as a tag."""
    return "$" + key if key.startswith("$") else key


def _check_text(text: str, path: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueDomainError(
            f"{path}: text contains a lone surrogate at position {exc.start}; "
            "only text that UTF-8 can encode is storable",
            path,
        ) from None


def check(value: object, path: str = "value", *, depth: int = 0) -> None:
    """Raise if ``value`` lies outside the domain; return nothing otherwise."""
    _encode(value, path, depth)


def decode(data: Any, path: str = "value") -> Any:
    """Turn JSON data produced by :func:`encode` back into a domain value.

    Raises :class:`ValueError` if the data could not have been produced by
    :func:`encode` (an unescaped ``$`` key, a malformed datetime tag): stored
    data is never interpreted loosely.
    """
    if isinstance(data, dict):
        if len(data) == 1 and _DATETIME_TAG in data:
            text = data[_DATETIME_TAG]
            if not isinstance(text, str):
                raise ValueError(f"{path}: malformed datetime tag {data!r}")
            try:
                moment = datetime.fromisoformat(text)
            except ValueError as exc:
                raise ValueError(f"{path}: malformed stored datetime {text!r}: {exc}") from None
            if moment.tzinfo is None:
                raise ValueError(f"{path}: stored datetime {text!r} has no timezone")
            return moment.astimezone(UTC)
        decoded: dict[str, Any] = {}
        for key, item in data.items():
            if not isinstance(key, str):
                raise ValueError(f"{path}: stored key {key!r} is not a string")
            if key.startswith("$"):
                if not key.startswith("$$"):
                    raise ValueError(f"{path}: stored key {key!r} is not escaped")
                key = key[1:]
            decoded[key] = decode(item, _child(path, key))
        return decoded
    if isinstance(data, list):
        return [decode(item, _child(path, index)) for index, item in enumerate(data)]
    if data is None or isinstance(data, bool | int | float | str):
        if isinstance(data, float) and not math.isfinite(data):
            raise ValueError(f"{path}: stored float {data!r} is not finite")
        return data
    raise ValueError(f"{path}: stored data of type {_describe(data)} is not JSON data")


def dumps(value: object, path: str = "value") -> str:
    """Encode a domain value as compact JSON text (validating it first)."""
    return canonical_json(encode(value, path))


def loads(text: str | bytes, path: str = "value") -> Any:
    """Decode JSON text produced by :func:`dumps`."""
    return decode(json.loads(text), path)


def canonical_json(data: JSONValue) -> str:
    """The canonical JSON text of already-encoded data.

    Used to measure sizes and to detect changes: the same data always gives the
    same text. Non-ASCII text is kept as is (sizes are counted in UTF-8 bytes).
    """
    return json.dumps(data, ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True)


def normalize(value: Any) -> Any:
    """What a domain value loads back as: tuples become lists, datetimes UTC.

    Everything else comes back equal and of the same type. Useful to compare
    what was stored with what was loaded.
    """
    if isinstance(value, tuple | list):
        return [normalize(item) for item in value]
    if isinstance(value, Mapping):
        return {key: normalize(item) for key, item in value.items()}
    if isinstance(value, datetime):
        return value.astimezone(UTC)
    return value
