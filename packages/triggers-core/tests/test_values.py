from __future__ import annotations

import json
import math
from collections import OrderedDict
from datetime import UTC, datetime, timedelta, timezone
from enum import IntEnum, StrEnum
from types import MappingProxyType
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from triggers import values
from triggers.errors import UnsupportedValueError, ValueDomainError
from triggers.values import INT64_MAX, INT64_MIN, MAX_DEPTH


def roundtrip(value: object) -> Any:
    return values.loads(values.dumps(value))


def nested_lists(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = [value]
    return value


def nested_dicts(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


# --- keys and text ------------------------------------------------------------


@pytest.mark.parametrize("key", ["", "$x", "$$x", "$", "$datetime", "a.b", ".", "a.b.c", " "])
def test_any_str_key_round_trips(key: str) -> None:
    value = {key: 1, "other": {key: [key]}}
    assert roundtrip(value) == value


def test_dollar_keys_are_escaped_with_one_more_dollar() -> None:
    assert values.encode({"$x": 1, "$$y": 2, "plain": 3}) == {"$$x": 1, "$$$y": 2, "plain": 3}


def test_user_datetime_key_is_not_mistaken_for_a_datetime() -> None:
    value = {"$datetime": "2024-01-01T00:00:00+00:00"}
    assert values.encode(value) == {"$$datetime": "2024-01-01T00:00:00+00:00"}
    assert roundtrip(value) == value


def test_keys_that_collide_only_before_escaping_stay_distinct() -> None:
    value = {"$x": 1, "$$x": 2, "$$$x": 3}
    assert roundtrip(value) == value


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain ascii",
        "emoji \U0001f600\U0001f468\u200d\U0001f469\u200d\U0001f467",
        "nul \x00 inside",
        "\x00",
        "rtl \u05e9\u05dc\u05d5\u05dd \u202e reversed \u202c",
        "line\u2028separator\u2029paragraph",
        "quotes \" and \\ backslash",
        "\uffff\U0010ffff",
    ],
)
def test_unicode_text_round_trips_as_value_and_key(text: str) -> None:
    value = {text: text, "list": [text]}
    assert roundtrip(value) == value


def test_dumps_keeps_non_ascii_text_as_is() -> None:
    assert values.dumps("\u05e9\U0001f600") == '"\u05e9\U0001f600"'


@pytest.mark.parametrize("text", ["\ud800", "a\udfffb", "\udc00\ud800"])
def test_lone_surrogate_in_value_is_refused(text: str) -> None:
    with pytest.raises(ValueDomainError, match="surrogate") as caught:
        values.encode({"a": [text]})
    assert isinstance(caught.value, ValueError)
    assert "value['a'][0]" in str(caught.value)
    assert caught.value.path == "value['a'][0]"


def test_lone_surrogate_in_key_is_refused() -> None:
    with pytest.raises(ValueDomainError, match="surrogate") as caught:
        values.encode({"outer": {"bad\ud800": 1}})
    assert "value['outer']" in str(caught.value)


# --- numbers ------------------------------------------------------------------


@pytest.mark.parametrize("number", [INT64_MIN, INT64_MIN + 1, -1, 0, 1, INT64_MAX - 1, INT64_MAX])
def test_signed_64_bit_ints_round_trip(number: int) -> None:
    result = roundtrip({"n": number})["n"]
    assert result == number
    assert type(result) is int


def test_int64_edges_are_exactly_two_to_the_63() -> None:
    assert INT64_MIN == -(2**63)
    assert INT64_MAX == 2**63 - 1


@pytest.mark.parametrize("number", [INT64_MAX + 1, INT64_MIN - 1, 2**64, -(2**100)])
def test_ints_outside_64_bits_are_refused_naming_the_path(number: int) -> None:
    with pytest.raises(ValueDomainError, match="64-bit") as caught:
        values.encode({"page": {"sizes": [1, number]}}, "kwargs")
    assert isinstance(caught.value, ValueError)
    assert "kwargs['page']['sizes'][1]" in str(caught.value)
    assert caught.value.path == "kwargs['page']['sizes'][1]"


def test_bools_stay_bools() -> None:
    result = roundtrip([True, False, 1, 0])
    assert [type(item) for item in result] == [bool, bool, int, int]


def test_negative_zero_keeps_its_sign() -> None:
    result = roundtrip(-0.0)
    assert result == 0.0
    assert math.copysign(1.0, result) == -1.0


@pytest.mark.parametrize("number", [0.1, 1e308, -1e-308, 5e-324, 1.0, 2.0**53 + 1])
def test_finite_floats_round_trip_exactly(number: float) -> None:
    result = roundtrip(number)
    assert result == number
    assert type(result) is float


@pytest.mark.parametrize("number", [math.nan, math.inf, -math.inf])
def test_non_finite_floats_are_refused_naming_the_path(number: float) -> None:
    with pytest.raises(ValueDomainError, match="not finite") as caught:
        values.dumps({"a": [0, {"b": number}]})
    assert "value['a'][1]['b']" in str(caught.value)


# --- containers ---------------------------------------------------------------


def test_tuples_come_back_as_lists() -> None:
    assert roundtrip({"t": (1, (2, 3), [4, (5,)])}) == {"t": [1, [2, 3], [4, [5]]]}


def test_empty_containers_round_trip() -> None:
    value = {"l": [], "d": {}, "t": (), "nested": [[], {}]}
    assert roundtrip(value) == {"l": [], "d": {}, "t": [], "nested": [[], {}]}


def test_nesting_exactly_max_depth_is_accepted() -> None:
    for value in (nested_lists(MAX_DEPTH), nested_dicts(MAX_DEPTH)):
        assert roundtrip(value) == value


def test_nesting_deeper_than_max_depth_is_refused() -> None:
    for value in (nested_lists(MAX_DEPTH + 1), nested_dicts(MAX_DEPTH + 1)):
        with pytest.raises(ValueDomainError, match=f"deeper than {MAX_DEPTH}"):
            values.encode(value)


@pytest.mark.parametrize("depth", [0, 1, 2, MAX_DEPTH - 1, MAX_DEPTH])
@pytest.mark.parametrize("nested", [nested_lists, nested_dicts])
def test_depth_counts_the_levels_a_value_will_sit_under(depth: int, nested: Any) -> None:
    fits = nested(MAX_DEPTH - depth)
    assert values.encode(fits, "kwargs", depth=depth) == values.encode(fits)
    values.check(fits, "kwargs", depth=depth)
    too_deep = nested(MAX_DEPTH - depth + 1)
    with pytest.raises(ValueDomainError, match=rf"^kwargs(\[.*)?: nested deeper than {MAX_DEPTH} levels"):
        values.encode(too_deep, "kwargs", depth=depth)
    with pytest.raises(ValueDomainError, match=f"nested deeper than {MAX_DEPTH} levels"):
        values.check(too_deep, "kwargs", depth=depth)


def test_depth_defaults_to_zero() -> None:
    values.check(nested_lists(MAX_DEPTH))
    with pytest.raises(ValueDomainError):
        values.check(nested_lists(MAX_DEPTH), depth=1)


def test_list_reference_cycle_is_refused_cleanly() -> None:
    cycle: list[Any] = [1]
    cycle.append(cycle)
    with pytest.raises(ValueDomainError, match="deeper than"):
        values.dumps(cycle)


def test_dict_reference_cycle_is_refused_cleanly() -> None:
    cycle: dict[str, Any] = {}
    cycle["self"] = {"again": cycle}
    with pytest.raises(ValueDomainError, match="deeper than") as caught:
        values.encode(cycle)
    assert caught.value.path.startswith("value['self']['again']['self']")


# --- unsupported types --------------------------------------------------------


class _Opaque:
    pass


@pytest.mark.parametrize(
    ("bad", "type_name"),
    [
        (b"bytes", "bytes"),
        (bytearray(b"x"), "bytearray"),
        ({1, 2}, "set"),
        (frozenset(), "frozenset"),
        (_Opaque(), "_Opaque"),
        (1 + 2j, "complex"),
        (datetime(2024, 1, 1, tzinfo=UTC).date(), "date"),
        (timedelta(seconds=1), "timedelta"),
    ],
)
def test_unsupported_types_are_refused_as_type_and_value_errors(bad: object, type_name: str) -> None:
    with pytest.raises(UnsupportedValueError) as caught:
        values.encode({"a": [0, 1, bad]})
    error = caught.value
    assert isinstance(error, TypeError)
    assert isinstance(error, ValueError)
    assert isinstance(error, ValueDomainError)
    assert error.path == "value['a'][2]"
    assert "value['a'][2]" in str(error)
    assert type_name in str(error)


@pytest.mark.parametrize("key", [1, None, 1.5, ("a", "b"), True, b"k"])
def test_non_str_dict_keys_are_refused(key: object) -> None:
    with pytest.raises(UnsupportedValueError, match="only str keys") as caught:
        values.encode({"outer": {key: 1}})
    assert isinstance(caught.value, TypeError)
    assert "value['outer']" in str(caught.value)


def test_refusal_happens_before_any_output() -> None:
    """check() validates a whole value; it never returns partial data."""
    assert values.check({"ok": [1, "two", None]}) is None
    with pytest.raises(UnsupportedValueError):
        values.check({"ok": 1, "bad": {1, 2}})


# --- datetimes ----------------------------------------------------------------


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2024, 3, 1, 12, 30, 15, 123456, tzinfo=UTC),
        datetime(2024, 3, 1, 12, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))),
        datetime(2024, 3, 1, 1, 0, tzinfo=timezone(timedelta(hours=-8))),
        datetime(1970, 1, 1, tzinfo=timezone(timedelta(hours=23, minutes=59))),
        datetime(2000, 2, 29, 23, 59, 59, tzinfo=timezone(timedelta(seconds=-3661))),
    ],
)
def test_aware_datetimes_come_back_equal_and_in_utc(moment: datetime) -> None:
    result = roundtrip({"when": [moment]})["when"][0]
    assert result == moment
    assert result.utcoffset() == timedelta(0)
    assert result.tzinfo == UTC
    assert result.replace(tzinfo=None) == moment.astimezone(UTC).replace(tzinfo=None)


def test_datetime_is_stored_as_a_tagged_utc_string() -> None:
    moment = datetime(2024, 3, 1, 12, 0, tzinfo=timezone(timedelta(hours=2)))
    assert values.encode(moment) == {"$datetime": "2024-03-01T10:00:00+00:00"}


def test_naive_datetime_is_refused_naming_the_path() -> None:
    with pytest.raises(ValueDomainError, match="naive") as caught:
        values.encode({"when": datetime(2024, 1, 1)})
    assert isinstance(caught.value, ValueError)
    assert caught.value.path == "value['when']"


@pytest.mark.parametrize(
    "moment",
    [
        datetime.min.replace(tzinfo=timezone(timedelta(hours=5))),
        datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
    ],
)
def test_aware_datetime_outside_the_utc_range_is_refused_as_a_domain_error(moment: datetime) -> None:
    """Converting these to UTC overflows year 1..9999; the codec must refuse them
    like any other out-of-domain value (ValueError naming the path), not leak an
    OverflowError."""
    with pytest.raises(ValueDomainError) as caught:
        values.encode({"when": moment})
    assert caught.value.path == "value['when']"


# --- decode refuses what encode could not have produced ------------------------


@pytest.mark.parametrize(
    "data",
    [
        {"$x": 1},
        {"ok": {"$": 1}},
        [{"$datetime": "2024-01-01T00:00:00+00:00", "extra": 1}],
        {"$datetime": 5},
        {"$datetime": None},
        {"$datetime": "not a date"},
        {"$datetime": "2024-01-01T00:00:00"},
        {"$datetime": ""},
        {1: "non-str key"},
        {"f": math.nan},
        {"f": math.inf},
        {"b": b"bytes"},
        (1, 2),
    ],
)
def test_decode_refuses_data_encode_could_not_have_produced(data: Any) -> None:
    with pytest.raises(ValueError):
        values.decode(data)


def test_decode_error_names_the_path() -> None:
    with pytest.raises(ValueError, match=r"kwargs\['a'\]\[0\].*not escaped"):
        values.decode({"a": [{"$oops": 1}]}, "kwargs")


def test_loads_accepts_bytes() -> None:
    assert values.loads(values.dumps({"a": "\u00e9"}).encode("utf-8")) == {"a": "\u00e9"}


def test_dumps_is_compact_and_sorted() -> None:
    assert values.dumps({"b": 1, "a": [1, 2], "$c": None}) == '{"$$c":null,"a":[1,2],"b":1}'


def test_canonical_json_refuses_nan() -> None:
    with pytest.raises(ValueError):
        values.canonical_json(math.nan)


# --- properties ---------------------------------------------------------------

_offsets = st.timedeltas(min_value=timedelta(hours=-23, minutes=-59), max_value=timedelta(hours=23, minutes=59))
aware_datetimes = st.datetimes(
    # A day inside datetime's range, so every offset can be converted to UTC.
    min_value=datetime(1, 1, 2),
    max_value=datetime(9999, 12, 30),
    timezones=st.builds(timezone, _offsets),
)
texts = st.text(st.characters(exclude_categories=("Cs",)))
keys = st.one_of(texts, st.sampled_from(["", "$", "$x", "$$x", "$datetime", "a.b", "\x00"]))
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=INT64_MIN, max_value=INT64_MAX),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
    aware_datetimes,
)
domain_values = st.recursive(
    scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.lists(children, max_size=4).map(tuple),
        st.dictionaries(keys, children, max_size=4),
    ),
    max_leaves=25,
)


@given(domain_values)
def test_every_domain_value_round_trips(value: Any) -> None:
    assert roundtrip(value) == values.normalize(value)


@given(domain_values)
def test_dumps_is_deterministic_and_stable_under_round_trip(value: Any) -> None:
    text = values.dumps(value)
    assert values.dumps(value) == text
    assert values.dumps(roundtrip(value)) == text
    assert values.canonical_json(json.loads(text)) == text


@given(st.dictionaries(keys, scalars, max_size=8))
def test_canonical_json_ignores_insertion_order(value: dict[str, Any]) -> None:
    reversed_order = dict(reversed(list(value.items())))
    assert values.dumps(reversed_order) == values.dumps(value)


# --- the quick walks give exactly what the checked ones give --------------------
#
# encode, decode and loads first try a walk that builds no error paths (the
# cost of a fire and a load is mostly these walks); anything unusual or wrong
# sends them to the checked walk. These compare the two, type for type.


def same(got: Any, want: Any) -> bool:
    """Equal and of the same types all the way down (True is not 1, 1 is not 1.0)."""
    if type(got) is not type(want):
        return False
    if isinstance(want, dict):
        return list(got) == list(want) and all(same(got[key], want[key]) for key in want)
    if isinstance(want, list):
        return len(got) == len(want) and all(same(g, w) for g, w in zip(got, want, strict=True))
    if isinstance(want, float):
        return got == want and math.copysign(1, got) == math.copysign(1, want)
    if isinstance(want, datetime):
        return got == want and got.tzinfo is want.tzinfo and got.isoformat() == want.isoformat()
    return bool(got == want)


def checked_encode(value: Any, path: str = "value", depth: int = 0) -> Any:
    return values._encode(value, path, depth)


def checked_decode(data: Any, path: str = "value") -> Any:
    return values._decode(data, path)


class _Level(IntEnum):
    HIGH = 40


class _Colour(StrEnum):
    RED = "red"


class _Moment(datetime):
    pass


UNUSUAL_VALUES: list[Any] = [
    _Level.HIGH,
    {"level": _Level.HIGH, _Colour.RED: _Colour.RED},
    OrderedDict([("b", 1), ("a", (2, 3))]),
    MappingProxyType({"$k": [1.5, None]}),
    _Moment(2024, 5, 6, 7, 8, 9, tzinfo=UTC),
    datetime(2024, 1, 15, 12, tzinfo=ZoneInfo("Europe/London")),  # zero offset, not UTC
    datetime(2024, 7, 15, 12, tzinfo=ZoneInfo("Europe/London")),
    datetime(2024, 1, 1, tzinfo=timezone(timedelta(0), "GMT")),
    {"nested": [{"t": (1, (True, False))}], "\u00e9t\u00e9": "\u00e9", "$$": {"$datetime": 1}},
    -0.0,
    [INT64_MIN, INT64_MAX, 2**53 + 1, 0.1 + 0.2],
]


@pytest.mark.parametrize("value", UNUSUAL_VALUES)
def test_encode_of_unusual_types_is_the_checked_encoding(value: Any) -> None:
    assert same(values.encode(value), checked_encode(value))


@given(domain_values)
def test_encode_is_the_checked_encoding(value: Any) -> None:
    assert same(values.encode(value), checked_encode(value))


OUTSIDE: list[Any] = [
    math.nan, math.inf, INT64_MAX + 1, INT64_MIN - 1, datetime(2024, 1, 1), b"x", {1, 2},
    {1: "int key"}, {"bad\ud800": 1}, "\udc00", [_Opaque()], nested_lists(MAX_DEPTH + 1),
    datetime.max.replace(tzinfo=timezone(timedelta(hours=-5))),
]


@pytest.mark.parametrize("bad", OUTSIDE)
@pytest.mark.parametrize("where", ["top", "in a list", "in a dict", "under a $ key"])
def test_encode_refuses_what_the_checked_encoding_refuses_with_its_error(bad: Any, where: str) -> None:
    value = {"top": bad, "in a list": [1, bad], "in a dict": {"a": {"b": bad}}, "under a $ key": {"$x": bad}}[where]
    with pytest.raises(ValueDomainError) as checked:
        checked_encode(value, "kwargs", 1)
    with pytest.raises(ValueDomainError) as quick:
        values.encode(value, "kwargs", depth=1)
    assert type(quick.value) is type(checked.value)
    assert str(quick.value) == str(checked.value)
    assert quick.value.path == checked.value.path


def test_depth_is_counted_by_the_quick_walk_too() -> None:
    fits = nested_dicts(MAX_DEPTH - 1)
    assert same(values.encode(fits, depth=1), checked_encode(fits, depth=1))
    with pytest.raises(ValueDomainError, match="deeper than"):
        values.encode(fits, depth=2)


STORED_DATA: list[Any] = [
    {"$$x": 1, "$$$y": [{"$$datetime": "not a tag"}], "plain": None},
    {"when": {"$datetime": "2024-03-01T10:00:00+00:00"}, "later": {"$datetime": "2024-03-01T12:00:00+02:00"}},
    {"$$datetime": {"$datetime": "2024-03-01T10:00:00.123456+00:00"}},
    [True, 1, 1.0, -0.0, "1", None, [], {}],
    {"": {"": ""}, "\u00e9": "\U0001f600", "a.b": [INT64_MIN, INT64_MAX]},
    OrderedDict([("$$k", 1)]),
    "text",
    5,
]
BAD_STORED_DATA: list[Any] = [
    {"$x": 1},
    {"ok": [{"$": 1}]},
    {"a": {"$datetime": 5}},
    {"a": [{"$datetime": "2024-01-01T00:00:00"}]},
    {"a": {"$datetime": "yesterday"}},
    {"n": [1, math.inf]},
    {"n": {"m": math.nan}},
    {"k": {1: "x"}},
    {"k": (1, 2)},
    {"k": b"x"},
]


@pytest.mark.parametrize("data", STORED_DATA)
def test_decode_is_the_checked_decoding(data: Any) -> None:
    assert same(values.decode(data), checked_decode(data))


@pytest.mark.parametrize("data", BAD_STORED_DATA)
def test_decode_refuses_what_the_checked_decoding_refuses_with_its_error(data: Any) -> None:
    with pytest.raises(ValueError) as checked:
        checked_decode(data, "metadata")
    with pytest.raises(ValueError) as quick:
        values.decode(data, "metadata")
    assert str(quick.value) == str(checked.value)


@given(domain_values)
def test_decode_and_loads_are_the_checked_decoding(value: Any) -> None:
    encoded = values.encode(value)
    assert same(values.decode(encoded), checked_decode(encoded))
    text = values.canonical_json(encoded)
    want = checked_decode(json.loads(text))
    assert same(values.loads(text), want)
    assert same(values.parse_decoded(text), want)


def test_decode_never_hands_back_the_stored_containers() -> None:
    """The storage layer keeps the stored data as the change baseline."""
    stored = {"a": {"b": [1, {"c": 2}]}, "l": []}
    decoded = values.decode(stored)
    decoded["a"]["b"][1]["c"] = 3
    decoded["l"].append(1)
    assert stored == {"a": {"b": [1, {"c": 2}]}, "l": []}


@pytest.mark.parametrize(
    "text",
    [
        '{"$x": 1}',
        '{"a": [{"$datetime": 5}]}',
        '{"a": {"$datetime": "2024-01-01T00:00:00"}}',
        '{"n": NaN}',
        '{"n": [Infinity]}',
        '{"n": -Infinity}',
        '{"n": 1e999}',
        '{"n": -1e999}',
    ],
)
def test_loads_refuses_what_decode_refuses_with_its_error(text: str) -> None:
    with pytest.raises(ValueError) as checked:
        checked_decode(json.loads(text), "kwargs")
    with pytest.raises(ValueError) as quick:
        values.loads(text, "kwargs")
    assert str(quick.value) == str(checked.value)
    with pytest.raises(ValueError):
        values.parse_decoded(text)


def test_loads_reads_a_byte_order_mark_as_json_loads_does() -> None:
    text = values.dumps({"a": 1})
    assert values.loads(("\ufeff" + text).encode("utf-8")) == {"a": 1}
    assert values.loads(text.encode("utf-16")) == {"a": 1}
