"""The value domain: everything inside round-trips exactly, everything
outside is refused with a clear error before anything is written."""

from __future__ import annotations

import math
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from triggers.manager import TriggerManager
from triggers.storage import TriggerStorageBackend
from triggers.values import INT64_MAX, INT64_MIN, MAX_DEPTH, normalize
from triggers_conformance.base import ConformanceBase
from triggers_conformance.guarantees import guarantee

Reload = Callable[[str], TriggerStorageBackend]


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"d": value}
    return value


DOMAIN_SAMPLES: dict[str, Any] = {
    "none": None,
    "booleans": [True, False],
    "int_edges": [0, -1, 1, INT64_MIN, INT64_MAX, 2**53 + 1],
    "floats": [0.0, -0.0, 1.5, -2.25, 1e-308, 1.7976931348623157e308, 0.1 + 0.2],
    "empty_string": "",
    "unicode": "żółw 🐢 日本語 \u202eRTL\u202c \x00nul \t\n",
    "odd_keys": {"": 1, "$x": 2, "$$y": 3, "a.b": 4, "$datetime": 5, " ": 6, "\x00": 7},
    "datetime_tag_lookalike": {"$datetime": "2020-01-01T00:00:00+00:00"},
    "aware_utc": datetime(2026, 11, 28, 3, 4, 5, 678901, tzinfo=UTC),
    "aware_offset": datetime(2001, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-7, minutes=-30))),
    "containers": {"list": [], "dict": {}, "mixed": [1, "a", None, {"k": [True]}]},
    "tuple": (1, (2, 3)),
    "deep": _nested(MAX_DEPTH - 4),
    "sql_and_operators": {"'; DROP TABLE x; --": "$set", "{\"$gt\": 1}": "#attr :val"},
}
"""Hard cases of the value domain, each stored in every place values go."""

OUTSIDE_SAMPLES: dict[str, Any] = {
    "nan": float("nan"),
    "infinity": float("inf"),
    "int_over_64_bits": INT64_MAX + 1,
    "int_under_64_bits": INT64_MIN - 1,
    "naive_datetime": datetime(2026, 1, 1),
    "bytes": b"raw",
    "set": {1, 2},
    "object": object(),
    "int_key": {1: "one"},
    "lone_surrogate": "\ud800",
    "too_deep": _nested(MAX_DEPTH + 2),
}
"""Values outside the domain; each must be refused wherever it is put."""


def assert_identical(loaded: Any, expected: Any, path: str = "value") -> None:
    """Equal *and* of the same type, so True never comes back as 1, nor 1 as 1.0."""
    assert type(loaded) is type(expected), f"{path}: {type(loaded).__name__} != {type(expected).__name__}"
    if isinstance(expected, dict):
        assert list(loaded) == list(expected) or sorted(loaded) == sorted(expected), path
        for key in expected:
            assert_identical(loaded[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, list):
        assert len(loaded) == len(expected), path
        for index, (got, want) in enumerate(zip(loaded, expected, strict=True)):
            assert_identical(got, want, f"{path}[{index}]")
    elif isinstance(expected, float):
        assert loaded == expected and math.copysign(1, loaded) == math.copysign(1, expected), path
    elif isinstance(expected, datetime):
        assert loaded == expected and loaded.utcoffset() == timedelta(0), path
    else:
        assert loaded == expected, path


class ValueDomainTests(ConformanceBase):
    @guarantee("round_trip")
    @pytest.mark.parametrize("sample", sorted(DOMAIN_SAMPLES))
    def test_values_round_trip_everywhere(
        self, storage: TriggerStorageBackend, reload: Reload, sample: str
    ) -> None:
        value = DOMAIN_SAMPLES[sample]
        with storage.acquire_lock():
            storage.update_configuration({
                "t_a": self.task("noop", after=["x"], withParams={"x": {"param": value}}, extra=value)
            })
            storage.create_instance(
                "t_a", kwargs={"x": {"value": value}}, metadata={"value": value}
            )
            storage.metadata["value"] = value
            storage.save()
        fresh = reload(storage.uid)
        expected = normalize(value)
        instance = fresh["t_a#0"]
        assert_identical(instance.kwargs["x"]["value"], expected, "kwargs")
        assert_identical(instance.metadata["value"], expected, "instance metadata")
        assert_identical(fresh.metadata["value"], expected, "session metadata")
        assert_identical(fresh.tasks["t_a"].with_params["x"]["param"], expected, "withParams")
        assert_identical(fresh.tasks["t_a"].extra["extra"], expected, "extra directive")

    @guarantee("round_trip")
    def test_fired_kwargs_round_trip(self, storage: TriggerStorageBackend, reload: Reload) -> None:
        manager = TriggerManager(storage)
        manager.update_configuration({"t_a": self.task("noop", after=["x", "y"])})
        kwargs = {name: value for name, value in DOMAIN_SAMPLES.items() if name != "deep"}
        manager.fire("x", kwargs)
        loaded = reload(storage.uid)["t_a#0"].kwargs["x"]
        assert_identical(loaded, normalize(kwargs), "fired kwargs")

    @guarantee("value_domain")
    @pytest.mark.parametrize("sample", sorted(OUTSIDE_SAMPLES))
    def test_values_outside_are_refused_and_nothing_is_written(
        self, storage: TriggerStorageBackend, reload: Reload, sample: str
    ) -> None:
        with storage.acquire_lock():
            storage.update_configuration({"t_a": self.task("noop", after=["x"])})
            storage.create_instance("t_a", kwargs={"x": {"ok": 1}})
            storage.metadata["before"] = "intact"
            storage.save()
        with storage.acquire_lock():
            storage["t_a#0"].kwargs["x"]["fine"] = "also changed"
            storage.metadata["bad"] = {"inner": [OUTSIDE_SAMPLES[sample]]}
            with pytest.raises((ValueError, TypeError)) as refused:
                storage.save()
        assert "bad" in str(refused.value) and "inner" in str(refused.value), (
            f"error does not name the path: {refused.value}"
        )
        fresh = reload(storage.uid)
        assert fresh.metadata == {"before": "intact", "instanceCounts": {"t_a": 1}}
        assert fresh["t_a#0"].kwargs == {"x": {"ok": 1}}

    @guarantee("value_domain")
    @pytest.mark.parametrize("sample", ["nan", "bytes", "naive_datetime", "int_over_64_bits"])
    def test_fire_refuses_bad_kwargs_before_writing(
        self, storage: TriggerStorageBackend, reload: Reload, sample: str
    ) -> None:
        manager = TriggerManager(storage)
        manager.update_configuration({"t_a": self.task("noop", after=["x", "y"])})
        with pytest.raises((ValueError, TypeError), match="page"):
            manager.fire("x", {"page": {"answer": OUTSIDE_SAMPLES[sample]}})
        fresh = reload(storage.uid)
        assert dict(fresh.instances) == {}
        assert "x" not in (fresh.metadata.get("triggerKwargs") or {})
