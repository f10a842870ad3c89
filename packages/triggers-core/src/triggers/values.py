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
    try:
        encoded: JSONValue = _encode_fast(value, depth)
    except Exception:
        pass
    else:
        return encoded
    # Something is outside the domain (or of an unusual type): the checked
    # walk below raises the error naming its path, or encodes what the quick
    # walk left to it.
    return _encode(value, path, depth)


def _encode_fast(value: Any, depth: int) -> Any:
    """:func:`_encode` without building a path for every element it visits.

    Most of the cost of encoding is bookkeeping for error messages that are
    almost never raised, so the common types are handled here without it.
    Anything unusual (a subclass, a Mapping that is not a dict, a value
    outside the domain) raises, and :func:`encode` starts over with the
    checked walk, which gives the same result or the error naming the path.
    So this must only ever succeed with exactly what :func:`_encode` returns.
    """
    kind = type(value)
    if kind is str:
        if not value.isascii():
            value.encode("utf-8")  # refuses lone surrogates
        return value
    if kind is int:
        if not INT64_MIN <= value <= INT64_MAX:
            raise _Unusual
        return value
    if kind is bool or value is None:
        return value
    if kind is dict:
        if depth >= MAX_DEPTH:
            raise _Unusual
        encoded: dict[str, JSONValue] = {}
        for key, item in value.items():
            if type(key) is not str:
                raise _Unusual  # refused by _encode, naming the path
            if not key.isascii():
                key.encode("utf-8")  # refuses lone surrogates
            if key.startswith("$"):
                key = "$" + key
            item_kind = type(item)
            if (item_kind is str and item.isascii()) or item_kind is bool or item is None:
                encoded[key] = item
            else:
                encoded[key] = _encode_fast(item, depth + 1)
        return encoded
    if kind is list or kind is tuple:
        if depth >= MAX_DEPTH:
            raise _Unusual
        return [_encode_fast(item, depth + 1) for item in value]
    if kind is float:
        if not math.isfinite(value):
            raise _Unusual
        return value
    if kind is datetime:
        offset = value.utcoffset()
        if offset is None:
            raise _Unusual
        return {_DATETIME_TAG: (value if not offset else value.astimezone(UTC)).isoformat()}
    raise _Unusual


class _Unusual(ValueError):
    """Raised by the quick walks to hand a value over to the checked ones.

    A ValueError, as :func:`parse_decoded` raises it for data that decoding
    refuses.
    """


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
    encode(value, path, depth=depth)


def decode(data: Any, path: str = "value") -> Any:
    """Turn JSON data produced by :func:`encode` back into a domain value.

    Raises :class:`ValueError` if the data could not have been produced by
    :func:`encode` (an unescaped ``$`` key, a malformed datetime tag): stored
    data is never interpreted loosely.

    Always returns new containers, never ``data``'s own dicts and lists, so
    a decoded value can be changed without changing the stored data it came
    from (the storage layer keeps that as its change baseline).
    """
    try:
        return _decode_fast(data)
    except Exception:
        pass
    # Something is wrong (or of an unusual type): the checked walk below
    # raises the error naming its path, or decodes what the quick walk left.
    return _decode(data, path)


def _decode_fast(data: Any) -> Any:
    """:func:`_decode` without building a path for every element it visits.

    Handles exactly the types :func:`json.loads` produces; anything else,
    and anything wrong, raises, and :func:`decode` starts over with the
    checked walk. So this must only ever succeed with exactly what
    :func:`_decode` returns.
    """
    kind = type(data)
    if kind is dict:
        if len(data) == 1 and _DATETIME_TAG in data:
            return _stored_datetime(data[_DATETIME_TAG])
        decoded: dict[str, Any] = {}
        for key, item in data.items():
            if type(key) is not str:
                raise _Unusual
            if key.startswith("$"):
                if not key.startswith("$$"):
                    raise _Unusual
                key = key[1:]
            item_kind = type(item)
            if item_kind is str or item_kind is int or item_kind is bool or item is None:
                decoded[key] = item
            else:
                decoded[key] = _decode_fast(item)
        return decoded
    if kind is list:
        return [_decode_fast(item) for item in data]
    if kind is str or kind is int or kind is bool or data is None:
        return data
    if kind is float and math.isfinite(data):
        return data
    raise _Unusual


def _stored_datetime(text: object) -> datetime:
    """The aware UTC datetime of a stored tag's text (raises on anything else)."""
    if type(text) is not str:
        raise _Unusual
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise _Unusual
    return moment.astimezone(UTC)


def _decode(data: Any, path: str) -> Any:
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
            decoded[key] = _decode(item, _child(path, key))
        return decoded
    if isinstance(data, list):
        return [_decode(item, _child(path, index)) for index, item in enumerate(data)]
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
    try:
        return parse_decoded(text)
    except Exception:
        pass
    return decode(json.loads(text), path)  # raises the error naming the path


def parse_decoded(text: str | bytes) -> Any:
    """Parse JSON text and decode every dict in it in the same pass.

    The JSON parser calls back for each dict it builds (innermost first), so
    datetime tags and escaped keys are handled while parsing instead of by a
    second walk over the whole value: the walk is what dominates loading a
    session. For the text of one encoded value, what it returns is exactly
    :func:`loads`'s result; it raises on anything :func:`decode` would refuse,
    but without naming the path, so callers fall back to
    ``decode(json.loads(text), path)`` for the message. For the text of a
    whole stored record it decodes every dict of the record, the record
    itself included: the caller must make sure that gives what decoding the
    record's values one by one gives (see ``TaskInstance.from_text``).
    """
    if isinstance(text, str):
        return _PARSER.decode(text)
    return json.loads(text, object_hook=_decoded_object, parse_float=_finite_float, parse_constant=_no_constant)


def _decoded_object(data: dict[str, Any]) -> Any:
    if len(data) == 1 and _DATETIME_TAG in data:
        return _stored_datetime(data[_DATETIME_TAG])
    for key in data:
        if key.startswith("$"):
            return {_unescaped(key): item for key, item in data.items()}
    return data


def _unescaped(key: str) -> str:
    if not key.startswith("$"):
        return key
    if not key.startswith("$$"):
        raise _Unusual
    return key[1:]


def _finite_float(text: str) -> float:
    number = float(text)
    if not math.isfinite(number):  # 1e999 parses as infinity
        raise _Unusual
    return number


def _no_constant(text: str) -> Any:
    raise _Unusual  # NaN, Infinity and -Infinity are not JSON data of the domain


_PARSER = json.JSONDecoder(object_hook=_decoded_object, parse_float=_finite_float, parse_constant=_no_constant)

_CANONICAL = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":"), sort_keys=True)
"""The encoder behind :func:`canonical_json`, built once: :func:`json.dumps`
builds one per call when given options, a measurable part of a small record's cost."""


def canonical_json(data: JSONValue) -> str:
    """The canonical JSON text of already-encoded data.

    Used to measure sizes and to detect changes: the same data always gives the
    same text. Non-ASCII text is kept as is (sizes are counted in UTF-8 bytes).
    """
    return _CANONICAL.encode(data)


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
