"""Hostile input, property-based: the whole value domain round-trips, the rest is refused.

Hypothesis draws session uids, task and trigger names, trigger kwargs and
metadata from the whole value domain (any Unicode text, 64-bit ints, finite
floats including -0.0, aware datetimes, nested lists and dicts with any str
keys), mixed with names that look like SQL, Mongo operators, DynamoDB
expressions, path separators and cache-key syntax. On every target:

* inside the domain, a fresh backend object loads back exactly what was
  stored (same values, same types), every name taken literally;
* outside it (NaN, huge ints, naive datetimes, bytes, sets, objects, lone
  surrogates...), the operation is refused with a TypeError/ValueError and
  the stored session is exactly as before.

Short run: 30 examples per target and property; soak run: batches of new
examples until the time share is spent.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from triggers_reliability.figures import FIGURES
from triggers_reliability.scale import Scale
from triggers_reliability.targets import Target

from triggers import values
from triggers.manager import IDEMPOTENCY_KEYS_KEY, TriggerManager
from triggers.storage import INSTANCE_COUNTS_KEY, TRIGGER_KWARGS_KEY
from triggers_conformance.value_domain import OUTSIDE_SAMPLES, assert_identical

EXAMPLES = 30

LOOKALIKES = [
    "'; DROP TABLE triggers_sessions; --", "1' OR '1'='1", "%s", "?", "\\x00", "NULL",
    "$where", "$gt", "$set", "{\"$ne\": null}", "a.b", "$", ".", "_id",
    "#attr", ":val", "SET #a = :v", "attribute_exists(pk)", "pk = :pk AND sk > :sk",
    "../../etc/passwd", "a/b\\c", "/", "C:\\triggers", "..",
    "triggers:head", "key with spaces", "key\twith\ncontrols", ":1:triggers:lock", "x" * 300,
    "\x00", "\u202eRTL", "żółw 🐢", "",
]
"""Names that mean something to some store's query language, key syntax or file system."""

RESERVED_METADATA = {INSTANCE_COUNTS_KEY, TRIGGER_KWARGS_KEY, IDEMPOTENCY_KEYS_KEY}

OFFSETS = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(-timedelta(hours=9, minutes=45))]

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=values.INT64_MIN, max_value=values.INT64_MAX)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text()
    | st.sampled_from(LOOKALIKES)
    | st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1),
                   timezones=st.sampled_from(OFFSETS))
)
keys = st.text() | st.sampled_from(LOOKALIKES)
domain_values = st.recursive(
    scalars,
    lambda children: st.lists(children, max_size=4) | st.dictionaries(keys, children, max_size=4),
    max_leaves=12,
)
names = st.sampled_from([name for name in LOOKALIKES if name]) | st.text(min_size=1, max_size=60)
task_names = names.filter(lambda name: "#" not in name)
metadata_keys = keys.filter(lambda key: key not in RESERVED_METADATA)


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                               HealthCheck.data_too_large, HealthCheck.filter_too_much],
    )


def _session_state(storage: Any) -> Any:
    """Everything stored for a session, in canonical JSON (to compare before/after)."""
    storage.invalidate_cache()
    return values.canonical_json({
        "tasks": {name: config.to_mapping() for name, config in storage.tasks.items()},
        "instances": {name: i.to_mapping() for name, i in storage.instances.items()},
        "metadata": values.encode(storage.metadata),
    })


def test_values_inside_the_domain_round_trip_exactly(
    target: Target, store: dict[str, Any], scale: Scale
) -> None:
    with FIGURES.timed("hostile input, inside the domain", target.name) as tally:

        @_settings(EXAMPLES)
        @given(uid=names, task=task_names, trigger=names, kwargs=st.dictionaries(keys, domain_values,
               max_size=4), key=metadata_keys, value=domain_values)
        def round_trip(uid: str, task: str, trigger: str, kwargs: dict[str, Any], key: str,
                       value: Any) -> None:
            # A finished task fires its own name: a trigger of the same name would
            # get the task's result as its latest kwargs.
            assume(trigger != task)
            uid = f"{uid}{uuid.uuid4().hex[:6]}"  # never a session of an earlier example
            manager = TriggerManager(target.storage(store, uid))
            manager.update_configuration(
                {task: {"after": [trigger], "run": "triggers_conformance.tasks.noop"}}
            )
            manager.fire(trigger, kwargs)
            with manager.storage.acquire_lock():
                manager.storage.metadata[key] = value
                manager.storage.save()
            fresh = target.storage(store, uid)
            assert fresh.uid == uid
            assert list(fresh.tasks) == [task]
            assert fresh.tasks[task].after == (trigger,)
            assert list(fresh.instances) == [f"{task}#0"]
            assert_identical(fresh[f"{task}#0"].kwargs[trigger], values.normalize(kwargs), "kwargs")
            assert_identical(fresh.metadata[key], values.normalize(value), f"metadata[{key!r}]")
            assert_identical(fresh.metadata[TRIGGER_KWARGS_KEY][trigger], values.normalize(kwargs),
                             "latest kwargs")
            tally.operations += 4
            tally.sessions += 1

        batches = 0
        while scale.again(batches, short=1):
            round_trip()
            batches += 1
        tally.note = f"{batches * EXAMPLES} examples"


OUTSIDE = sorted(OUTSIDE_SAMPLES)


def test_values_outside_the_domain_are_refused_with_nothing_written(
    target: Target, store: dict[str, Any], scale: Scale
) -> None:
    uid = f"outside-{uuid.uuid4().hex[:8]}"
    manager = TriggerManager(target.storage(store, uid))
    manager.update_configuration({"t": {"after": ["go"], "run": "triggers_conformance.tasks.noop"}})
    manager.fire("go", {"fine": 1})
    before = _session_state(target.storage(store, uid))

    with FIGURES.timed("hostile input, outside the domain", target.name) as tally:

        @_settings(EXAMPLES)
        @given(bad=st.sampled_from(OUTSIDE), where=st.sampled_from(["kwargs", "metadata", "nested"]),
               good=domain_values)
        def refused(bad: str, where: str, good: Any) -> None:
            value = OUTSIDE_SAMPLES[bad]
            storage = target.storage(store, uid)
            if where == "kwargs":
                with pytest.raises((TypeError, ValueError)):
                    TriggerManager(storage).fire("go", {"ok": good, "bad": value})
            else:
                with storage.acquire_lock():
                    storage.metadata["ok"] = good
                    storage.metadata["bad"] = value if where == "metadata" else {"in": [good, value]}
                    with pytest.raises((TypeError, ValueError)):
                        storage.save()
            assert _session_state(target.storage(store, uid)) == before, f"{bad} in {where} wrote"
            tally.operations += 1
            tally.faults += 1

        batches = 0
        while scale.again(batches, short=1):
            refused()
            batches += 1
        for uid_outside in ["\ud800", "a\udfffb"]:
            with pytest.raises(ValueError):
                target.storage(store, uid_outside)
        tally.sessions += 1
        tally.note = f"{batches * EXAMPLES} examples"
