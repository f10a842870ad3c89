from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

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
