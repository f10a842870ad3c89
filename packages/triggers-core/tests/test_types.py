from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from triggers import values
from triggers.errors import ConfigurationError
from triggers.types import RESOLVED_STATUSES, TRANSITIONS, InstanceStatus, TaskConfig, TaskInstance
from triggers.values import MAX_DEPTH

RUN = "core_sample_tasks.name_of_instance"
LONE = "\ud800"  # a lone surrogate: text that UTF-8 cannot encode


def config(name: str = "t_import", **directives: Any) -> TaskConfig:
    return TaskConfig.from_mapping(name, {"after": ["start"], "run": RUN, **directives})


# --- TaskConfig.from_mapping validation -----------------------------------------


@pytest.mark.parametrize(
    ("directives", "directive"),
    [
        ({"run": RUN}, "after"),
        ({"after": ["start"]}, "run"),
        ({"after": None, "run": RUN}, "after"),
        ({"after": "start", "run": RUN}, "after"),
        ({"after": [], "run": RUN}, "after"),
        ({"after": 5, "run": RUN}, "after"),
        ({"after": {"start": 1}, "run": RUN}, "after"),
        ({"after": ["start", 3], "run": RUN}, "after"),
        ({"after": ["start", ""], "run": RUN}, "after"),
        ({"after": ["start"], "run": 5}, "run"),
        ({"after": ["start"], "run": ""}, "run"),
        ({"after": ["start"], "run": "   "}, "run"),
        ({"after": ["start"], "run": ["a.b"]}, "run"),
        ({"after": ["start"], "run": RUN, "unless": "stop"}, "unless"),
        ({"after": ["start"], "run": RUN, "unless": 7}, "unless"),
        ({"after": ["start"], "run": RUN, "unless": [None]}, "unless"),
        ({"after": ["start"], "run": RUN, "andEvery": ""}, "andEvery"),
        ({"after": ["start"], "run": RUN, "andEvery": ["tick"]}, "andEvery"),
        ({"after": ["start"], "run": RUN, "using": ""}, "using"),
        ({"after": ["start"], "run": RUN, "using": 3}, "using"),
        ({"after": ["start"], "run": RUN, "withParams": "x"}, "withParams"),
        ({"after": ["start"], "run": RUN, "withParams": ["start"]}, "withParams"),
        ({"after": ["start"], "run": RUN, "withParams": {"start": 5}}, "withParams"),
        ({"after": ["start"], "run": RUN, "withParams": {"start": ["a"]}}, "withParams"),
        ({"after": ["start"], "run": RUN, "withParams": {1: {"a": 1}}}, "withParams"),
        ({"after": ["start"], "run": RUN, "withParams": {"start": {"v": object()}}}, "withParams"),
        ({"after": ["start"], "run": RUN, "withParams": {"start": {"v": float("nan")}}}, "withParams"),
        ({"after": ["start"], "run": RUN, "withParams": {"start": {"v": datetime(2024, 1, 1)}}}, "withParams"),
        ({"after": ["start"], "run": RUN, "tags": {"a", "b"}}, "tags"),
        ({"after": ["start"], "run": RUN, "limit": 2**64}, "limit"),
    ],
)
def test_bad_directive_is_refused_naming_task_and_directive(directives: dict[str, Any], directive: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TaskConfig.from_mapping("t_importSubject", directives)
    message = str(caught.value)
    assert "'t_importSubject'" in message
    assert directive in message
    assert isinstance(caught.value, ValueError)


@pytest.mark.parametrize("empty", [[], 0, False, ""])
def test_falsy_withparams_of_the_wrong_type_is_refused(empty: object) -> None:
    """Only a mapping (or omitting the directive) is a valid withParams; an empty
    list is as wrong a type as a non-empty one."""
    with pytest.raises(ConfigurationError, match="withParams"):
        TaskConfig.from_mapping("t_x", {"after": ["start"], "run": RUN, "withParams": empty})


def test_non_str_directive_name_is_refused() -> None:
    """Directive names are stored as record keys; a non-str one would only blow up
    later, at save time, with a bare TypeError from the JSON encoder."""
    with pytest.raises(ConfigurationError, match="'t_x'"):
        TaskConfig.from_mapping("t_x", {"after": ["start"], "run": RUN, 1: "x"})


def test_hash_in_task_name_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'#' is reserved") as caught:
        TaskConfig.from_mapping("t_x#1", {"after": ["start"], "run": RUN})
    assert "'t_x#1'" in str(caught.value)


@pytest.mark.parametrize("name", ["", None, 5])
def test_task_name_must_be_a_non_empty_str(name: Any) -> None:
    with pytest.raises(ConfigurationError, match="task name"):
        TaskConfig.from_mapping(name, {"after": ["start"], "run": RUN})


@pytest.mark.parametrize("directives", [["after"], "after: start", None])
def test_directives_must_be_a_mapping(directives: Any) -> None:
    with pytest.raises(ConfigurationError, match="'t_x'"):
        TaskConfig.from_mapping("t_x", directives)


def test_from_mapping_normalises_lists_and_run() -> None:
    parsed = TaskConfig.from_mapping(
        "t_x",
        {"after": ("a", "b", "a"), "run": f"  {RUN} ", "unless": ["u", "u"], "andEvery": "tick", "using": "eager"},
    )
    assert parsed.after == ("a", "b")
    assert parsed.unless == ("u",)
    assert parsed.run == RUN
    assert parsed.and_every == "tick"
    assert parsed.using == "eager"
    assert parsed.with_params == {}
    assert parsed.extra == {}


# --- stored form --------------------------------------------------------------


def test_to_mapping_uses_directive_names_and_encodes_values() -> None:
    moment = datetime(2024, 1, 1, 12, tzinfo=UTC)
    parsed = config(
        unless=["stop"],
        andEvery="tick",
        using="eager",
        withParams={"start": {"since": moment, "$k": 1}},
    )
    assert parsed.to_mapping() == {
        "after": ["start"],
        "run": RUN,
        "unless": ["stop"],
        "andEvery": "tick",
        "using": "eager",
        "withParams": {"start": {"since": {"$datetime": "2024-01-01T12:00:00+00:00"}, "$$k": 1}},
    }


def test_minimal_to_mapping_omits_unset_directives() -> None:
    assert config().to_mapping() == {"after": ["start"], "run": RUN}


def test_extra_directives_are_kept_and_round_trip() -> None:
    moment = datetime(2024, 5, 6, 7, 8, 9, tzinfo=timezone(timedelta(hours=3)))
    parsed = config(
        priority=5,
        tags=["a", "b"],
        owner={"$team": "data", "since": moment, "a.b": None},
        withParams={"start": {"x": [1, 2]}},
    )
    assert parsed.extra == {"priority": 5, "tags": ["a", "b"], "owner": {"$team": "data", "since": moment, "a.b": None}}
    stored = parsed.to_mapping()
    assert stored["owner"] == {"$$team": "data", "since": {"$datetime": "2024-05-06T04:08:09+00:00"}, "a.b": None}
    assert TaskConfig.from_stored("t_import", stored) == parsed
    # Through JSON text, as a store holds it.
    assert TaskConfig.from_stored("t_import", json.loads(values.canonical_json(stored))) == parsed


def test_from_stored_validates_like_from_mapping() -> None:
    with pytest.raises(ConfigurationError, match="'after'"):
        TaskConfig.from_stored("t_x", {"run": RUN})


# --- derived trigger sets -----------------------------------------------------


def test_required_triggers_add_and_every_after_the_after_list() -> None:
    assert config(after=["a", "b"], andEvery="tick").required_triggers == ("a", "b", "tick")


def test_required_triggers_do_not_repeat_an_and_every_already_in_after() -> None:
    assert config(after=["a", "tick"], andEvery="tick").required_triggers == ("a", "tick")


def test_required_triggers_without_and_every_are_after() -> None:
    assert config(after=["a", "b"]).required_triggers == ("a", "b")


def test_listens_to_includes_unless() -> None:
    parsed = config(after=["a"], andEvery="tick", unless=["stop", "halt"])
    assert parsed.listens_to == frozenset({"a", "tick", "stop", "halt"})


# --- TaskInstance -------------------------------------------------------------

# status: (can_schedule with every trigger, can_run, can_abandon, can_replay, can_skip, is_resolved)
_STATUS_TABLE = {
    InstanceStatus.UNSTARTED: (True, False, True, False, False, False),
    InstanceStatus.SCHEDULED: (False, True, False, False, False, False),
    InstanceStatus.RUNNING: (False, False, False, False, False, False),
    InstanceStatus.FINISHED: (False, False, False, False, False, True),
    InstanceStatus.FAILED: (False, False, False, True, True, False),
    InstanceStatus.ABANDONED: (False, False, False, False, False, True),
    InstanceStatus.REPLAYED: (False, False, False, False, False, True),
    InstanceStatus.SKIPPED: (False, False, False, False, False, True),
}


def test_status_table_covers_every_status() -> None:
    assert set(_STATUS_TABLE) == set(InstanceStatus)


@pytest.mark.parametrize("status", list(InstanceStatus))
def test_instance_abilities_by_status(status: InstanceStatus) -> None:
    instance = TaskInstance("t_import#0", config(), status=status.value, kwargs={"start": {}})
    abilities = (
        instance.can_schedule,
        instance.can_run,
        instance.can_abandon,
        instance.can_replay,
        instance.can_skip,
        instance.is_resolved,
    )
    assert abilities == _STATUS_TABLE[status]
    assert instance.status is status


def test_unstarted_instance_missing_a_trigger_cannot_schedule() -> None:
    instance = TaskInstance("t#0", config("t", after=["a", "b"], andEvery="tick"), kwargs={"a": {}})
    assert instance.missing_triggers == ("b", "tick")
    assert not instance.can_schedule
    instance.kwargs["b"] = {}
    instance.kwargs["tick"] = {"n": 1}
    assert instance.missing_triggers == ()
    assert instance.can_schedule


def test_instance_defaults() -> None:
    instance = TaskInstance("t_import#0", config())
    assert instance.status is InstanceStatus.UNSTARTED
    assert instance.task_name == "t_import"
    assert instance.kwargs == {}
    assert instance.metadata == {}
    assert instance.abandon_state is None
    assert instance.depth == 0
    assert instance.parent is None
    assert instance.log_level == logging.NOTSET
    assert instance.log_level_name == "NOTSET"
    assert instance.logs_resolved
    assert instance.last_modified is None


def test_instance_properties_read_metadata() -> None:
    moment = datetime(2024, 1, 1, tzinfo=UTC)
    instance = TaskInstance(
        "t_import#3",
        config(),
        metadata={"depth": 2, "parent": "t_import#1", "logLevel": logging.ERROR, "lastModified": moment},
    )
    assert instance.depth == 2
    assert instance.parent == "t_import#1"
    assert instance.log_level == logging.ERROR
    assert instance.log_level_name == "ERROR"
    assert not instance.logs_resolved
    assert instance.last_modified == moment
    instance.metadata["logsResolved"] = True
    assert instance.logs_resolved


@pytest.mark.parametrize("level", [logging.INFO, logging.WARNING])
def test_logs_below_the_error_threshold_need_no_resolution(level: int) -> None:
    instance = TaskInstance("t#0", config("t"), metadata={"logLevel": level})
    assert TaskInstance.LOG_LEVEL_THRESHOLD == logging.ERROR
    assert instance.log_level == level
    assert instance.logs_resolved


@pytest.mark.parametrize(
    ("status", "relevant"),
    [
        (InstanceStatus.FAILED, True),
        (InstanceStatus.FINISHED, True),
        (InstanceStatus.ABANDONED, False),
        (InstanceStatus.REPLAYED, False),
        (InstanceStatus.SKIPPED, False),
    ],
)
def test_errors_of_instances_someone_dealt_with_are_resolved(status: InstanceStatus, relevant: bool) -> None:
    instance = TaskInstance("t#0", config("t"), status=status, metadata={"logLevel": logging.ERROR})
    assert instance.logs_relevant is relevant
    assert instance.logs_resolved is not relevant


def test_after_may_be_empty_with_and_every() -> None:
    parsed = config(after=[], andEvery="tick")
    assert parsed.after == ()
    assert parsed.required_triggers == ("tick",)
    assert TaskConfig.from_stored("t_import", parsed.to_mapping()) == parsed


def test_after_may_not_be_empty_without_and_every() -> None:
    with pytest.raises(ConfigurationError, match=r"'t_import'.*'after'"):
        config(after=[])


def test_meta_constants_name_the_keys_triggers_2_used() -> None:
    assert (TaskInstance.META_RESULT, TaskInstance.META_ACTUAL_KWARGS) == ("result", "actualKwargs")
    assert (TaskInstance.META_DEPTH, TaskInstance.META_PARENT) == ("depth", "parent")
    assert (TaskInstance.META_LOG_LEVEL, TaskInstance.META_LOGS_RESOLVED) == ("logLevel", "logsResolved")
    assert TaskInstance.META_EXCEPTION_TYPE == "exceptionType"


def test_instance_properties_ignore_metadata_of_the_wrong_type() -> None:
    instance = TaskInstance(
        "t#0",
        config("t"),
        metadata={"depth": "2", "parent": 5, "logLevel": "ERROR", "lastModified": "2024-01-01"},
    )
    assert instance.depth == 0
    assert instance.parent is None
    assert instance.log_level == logging.NOTSET
    assert instance.last_modified is None


def test_instance_kwargs_and_metadata_are_copied() -> None:
    kwargs = {"start": {"a": 1}}
    metadata = {"k": 1}
    instance = TaskInstance("t#0", config("t"), kwargs=kwargs, metadata=metadata)
    instance.kwargs["start"]["a"] = 2
    instance.metadata["k"] = 2
    assert kwargs == {"start": {"a": 1}}
    assert metadata == {"k": 1}


def test_instance_to_mapping_and_from_stored_round_trip() -> None:
    moment = datetime(2024, 2, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=-2)))
    task = config()
    instance = TaskInstance(
        "t_import#4",
        task,
        status="abandoned",
        kwargs={"start": {"$k": [1, (2, 3)], "when": moment, "": "\x00"}},
        abandon_state={"status": "unstarted"},
        metadata={"created": moment, "a.b": {"depth": 1}},
    )
    stored = instance.to_mapping()
    assert stored["task"] == "t_import"
    assert stored["status"] == "abandoned"
    assert stored["abandonState"] == {"status": "unstarted"}
    assert stored["kwargs"] == {
        "start": {"$$k": [1, [2, 3]], "when": {"$datetime": "2024-02-03T06:05:06+00:00"}, "": "\x00"}
    }
    for record in (stored, json.loads(values.canonical_json(stored))):
        loaded = TaskInstance.from_stored("t_import#4", record, {"t_import": task})
        assert loaded.name == "t_import#4"
        assert loaded.config is task
        assert loaded.status is InstanceStatus.ABANDONED
        assert loaded.kwargs == {"start": {"$k": [1, [2, 3]], "when": moment, "": "\x00"}}
        assert loaded.kwargs["start"]["when"].tzinfo == UTC
        assert loaded.abandon_state == {"status": "unstarted"}
        assert loaded.metadata == {"created": moment, "a.b": {"depth": 1}}
        assert loaded.to_mapping() == stored


def test_to_mapping_without_abandon_state_omits_it() -> None:
    assert "abandonState" not in TaskInstance("t#0", config("t")).to_mapping()


def test_to_mapping_refuses_values_outside_the_domain_naming_the_instance() -> None:
    instance = TaskInstance("t#0", config("t"), kwargs={"start": {"blob": b"raw"}})
    with pytest.raises(TypeError, match=r"instance 't#0' kwargs\['start'\]\['blob'\]"):
        instance.to_mapping()


def test_from_stored_infers_the_task_from_the_instance_name() -> None:
    task = config("t")
    loaded = TaskInstance.from_stored("t#2", {"status": "finished"}, {"t": task})
    assert loaded.config is task
    assert loaded.status is InstanceStatus.FINISHED
    assert loaded.kwargs == {}
    assert loaded.metadata == {}


def test_from_stored_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError, match="exploded"):
        TaskInstance.from_stored("t#0", {"task": "t", "status": "exploded"}, {"t": config("t")})


def test_from_stored_refuses_an_unknown_task() -> None:
    with pytest.raises(ValueError, match="unknown task 'gone'"):
        TaskInstance.from_stored("gone#0", {"task": "gone", "status": "finished"}, {"t": config("t")})


def test_constructor_refuses_an_unknown_status() -> None:
    with pytest.raises(ValueError):
        TaskInstance("t#0", config("t"), status="bogus")


# --- allowed status changes ---------------------------------------------------

_S = InstanceStatus
# Every status an instance may move to from each status, written out here (not
# derived from TRANSITIONS) so that a change to the table has to be deliberate.
_EXPECTED_MOVES: dict[InstanceStatus, set[InstanceStatus]] = {
    # a fire schedules it, or its `unless` triggers abandon it
    _S.UNSTARTED: {_S.SCHEDULED, _S.ABANDONED},
    # a runner starts it; an operator or external worker may settle it directly
    _S.SCHEDULED: {_S.RUNNING, _S.UNSTARTED, _S.ABANDONED, _S.FINISHED, _S.FAILED, _S.SKIPPED},
    # its outcome; a retry reschedules it
    _S.RUNNING: {_S.FINISHED, _S.FAILED, _S.SCHEDULED, _S.SKIPPED},
    _S.FAILED: {_S.REPLAYED, _S.SKIPPED},
    # resolved: final
    _S.FINISHED: set(),
    _S.ABANDONED: set(),
    _S.REPLAYED: set(),
    _S.SKIPPED: set(),
}


def test_expected_moves_and_transitions_cover_every_status() -> None:
    assert set(_EXPECTED_MOVES) == set(InstanceStatus)
    assert set(TRANSITIONS) == set(InstanceStatus)


@pytest.mark.parametrize("target", list(InstanceStatus))
@pytest.mark.parametrize("source", list(InstanceStatus))
def test_can_become_follows_the_transition_table(source: InstanceStatus, target: InstanceStatus) -> None:
    instance = TaskInstance("t_import#0", config(), status=source, kwargs={"start": {}})
    allowed = target in _EXPECTED_MOVES[source]
    assert instance.can_become(target) is allowed
    assert (target in TRANSITIONS[source]) is allowed


@pytest.mark.parametrize("status", sorted(RESOLVED_STATUSES))
def test_resolved_statuses_are_final(status: InstanceStatus) -> None:
    instance = TaskInstance("t_import#0", config(), status=status)
    assert instance.is_resolved
    assert TRANSITIONS[status] == frozenset()
    assert not any(instance.can_become(target) for target in InstanceStatus)


def test_statuses_without_moves_are_exactly_the_resolved_ones() -> None:
    assert {status for status, moves in TRANSITIONS.items() if not moves} == RESOLVED_STATUSES


# --- names must be storable text ----------------------------------------------


@pytest.mark.parametrize(
    ("name", "directives", "directive"),
    [
        (f"t_{LONE}", {}, "task name"),
        ("t_x", {"after": ["start", f"page{LONE}"]}, "after"),
        ("t_x", {"unless": [f"stop{LONE}"]}, "unless"),
        ("t_x", {"andEvery": f"tick{LONE}"}, "andEvery"),
        ("t_x", {"run": f"core_sample_tasks.task{LONE}"}, "run"),
        ("t_x", {"using": f"eager{LONE}"}, "using"),
        ("t_x", {f"note{LONE}": 1}, "directive name"),
    ],
)
def test_name_with_a_lone_surrogate_is_refused_naming_task_and_directive(
    name: str, directives: dict[str, Any], directive: str
) -> None:
    with pytest.raises(ConfigurationError) as caught:
        TaskConfig.from_mapping(name, {"after": ["start"], "run": RUN, **directives})
    message = str(caught.value)
    assert f"task {name!r}" in message
    assert f"directive {directive!r}" in message
    assert "lone surrogate" in message
    assert caught.value.__cause__ is None  # the message says it all; no chained codec error


def test_with_params_trigger_name_with_a_lone_surrogate_is_refused() -> None:
    """``withParams`` keys are trigger names like ``after``'s: refused when the
    task is configured, not later, as a ValueDomainError from a save."""
    with pytest.raises(ConfigurationError) as caught:
        TaskConfig.from_mapping(
            "t_x", {"after": ["start"], "run": RUN, "withParams": {f"start{LONE}": {"page": 1}}}
        )
    message = str(caught.value)
    assert "task 't_x'" in message
    assert "withParams" in message


def nested_dicts(levels: int) -> Any:
    value: Any = "leaf"
    for _ in range(levels):
        value = {"k": value}
    return value


def test_with_params_are_validated_at_the_depth_they_are_stored() -> None:
    """The parameters of one trigger sit one level inside the stored
    ``withParams`` mapping; parameters that could not be stored are refused
    when the task is configured, not at the next save."""
    fits = config(withParams={"start": nested_dicts(MAX_DEPTH - 1)})
    assert TaskConfig.from_stored("t_import", fits.to_mapping()) == fits
    with pytest.raises(ConfigurationError) as caught:
        config("t_x", withParams={"start": nested_dicts(MAX_DEPTH)})
    message = str(caught.value)
    assert "task 't_x'" in message
    assert "withParams" in message
    assert f"deeper than {MAX_DEPTH}" in message


# --- records given as text, and configs validated once ---------------------------
#
# A load parses an instance's stored text and decodes it in one pass
# (TaskInstance.from_text), builds it without the constructor's copies, and
# validates a config only the first time it sees its text. Each must give
# exactly what from_stored gives, errors included.


def _state(instance: TaskInstance) -> tuple[Any, ...]:
    """Everything an instance holds, with the type of every value in it."""
    def typed(value: Any) -> Any:
        if isinstance(value, dict):
            return ("dict", [(key, typed(item)) for key, item in value.items()])
        if isinstance(value, list):
            return ("list", [typed(item) for item in value])
        if isinstance(value, datetime):
            return ("datetime", value.isoformat(), value.tzinfo is UTC)
        return (type(value).__name__, value)

    return (
        type(instance), instance.name, instance.config, type(instance.status), instance.status,
        typed(instance.kwargs), typed(instance.abandon_state), typed(instance.metadata),
    )


MOMENT = datetime(2024, 2, 3, 4, 5, 6, 789, tzinfo=timezone(timedelta(hours=-2)))
INSTANCE_RECORDS: list[dict[str, Any]] = [
    TaskInstance(
        "t_import#4", config(), status="abandoned",
        kwargs={"start": {"$k": [1, (2, 3)], "when": MOMENT, "": "\x00", "$datetime": "not a tag"}},
        abandon_state={"status": "unstarted", "$x": {"$$y": True}},
        metadata={"created": MOMENT, "flags": [True, 1, 1.0, -0.0, None], "\u00e9": "\U0001f600"},
    ).to_mapping(),
    {"task": "t_import", "status": "finished"},  # no kwargs, metadata or abandonState
    {"status": "running", "kwargs": None, "metadata": None, "abandonState": None},  # task from the name
    {"task": "t_import", "kwargs": {"start": {}}, "metadata": {}, "unknown": {"$ignored": 1}},
    {"task": "", "status": "scheduled", "kwargs": {}, "metadata": {"statusTimes": {"scheduled": {
        "$datetime": "2024-01-01T00:00:00+00:00"}}}},
    # Keys from_stored ignores, which decoding the whole record at once would not.
    {"$datetime": "2024-01-01T00:00:00+00:00"},
    {"$x": 1, "task": "t_import", "kwargs": {"start": {"$$k": 1}}},
]


@pytest.mark.parametrize("record", INSTANCE_RECORDS)
def test_from_text_is_from_stored_of_the_parsed_text(record: dict[str, Any]) -> None:
    configs = {"t_import": config()}
    text = values.canonical_json(record)
    got = TaskInstance.from_text("t_import#4", text, configs)
    want = TaskInstance.from_stored("t_import#4", json.loads(text), configs)
    assert _state(got) == _state(want)
    assert got.to_mapping() == want.to_mapping()


@pytest.mark.parametrize(
    ("record", "what"),
    [
        ({"task": "t", "status": "exploded"}, "exploded"),
        ({"task": "gone", "status": "finished"}, "unknown task 'gone'"),
        ({"task": "t", "kwargs": {"start": 5}}, ""),
        ({"task": "t", "kwargs": {"start": {"$x": 1}}}, "not escaped"),
        ({"task": "t", "metadata": {"when": {"$datetime": "yesterday"}}}, "yesterday"),
        ({"task": "t", "metadata": {"when": {"$datetime": "2024-01-01T00:00:00"}}}, "no timezone"),
        ({"task": {"$datetime": "2024-01-01T00:00:00+00:00"}}, ""),
        ({"task": "t", "kwargs": [["start", {}]]}, ""),
    ],
)
def test_from_text_refuses_what_from_stored_refuses_with_its_error(record: Any, what: str) -> None:
    configs = {"t": config("t")}
    text = values.canonical_json(record)
    with pytest.raises(Exception) as checked:
        TaskInstance.from_stored("t#0", json.loads(text), configs)
    with pytest.raises(Exception) as quick:
        TaskInstance.from_text("t#0", text, configs)
    assert type(quick.value) is type(checked.value)
    assert str(quick.value) == str(checked.value)
    assert what in str(quick.value)


def test_from_text_refuses_text_that_is_not_json() -> None:
    with pytest.raises(ValueError):
        TaskInstance.from_text("t#0", '{"task": "t", ', {"t": config("t")})


def test_an_instance_from_text_shares_nothing_with_another_from_the_same_text() -> None:
    configs = {"t_import": config()}
    text = values.canonical_json(INSTANCE_RECORDS[0])
    first = TaskInstance.from_text("t_import#4", text, configs)
    first.kwargs["start"]["$k"].append(4)
    first.metadata["flags"].clear()
    second = TaskInstance.from_text("t_import#4", text, configs)
    assert second.to_mapping() == INSTANCE_RECORDS[0]


def test_a_subclass_of_task_instance_is_built_by_its_constructor() -> None:
    class Tagged(TaskInstance):
        __slots__ = ("tag",)

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self.tag = "built"

    text = values.canonical_json(INSTANCE_RECORDS[0])
    loaded = Tagged.from_text("t_import#4", text, {"t_import": config()})
    assert isinstance(loaded, Tagged)
    assert loaded.tag == "built"


CONFIG_RECORDS: list[dict[str, Any]] = [
    config().to_mapping(),
    config(unless=["stop"], andEvery="page", using="queue").to_mapping(),
    config(withParams={"start": {"$k": [1, 2], "when": MOMENT}}, color={"$x": [True]}).to_mapping(),
    {"after": ["start", "start"], "run": f"  {RUN} ", "unless": [], "withParams": {}},  # not normalized
]


@pytest.mark.parametrize("record", CONFIG_RECORDS)
def test_config_from_text_is_from_stored_every_time(record: dict[str, Any]) -> None:
    text = values.canonical_json(record)
    want = TaskConfig.from_stored("t_import", json.loads(text))
    for _ in range(3):  # the first validates, the others reuse that
        by_text = TaskConfig.from_text("t_import", text)
        with_text = TaskConfig.from_stored("t_import", json.loads(text), text=text)
        for got in (by_text, with_text):
            assert got == want
            assert got is not want
            assert got.to_mapping() == want.to_mapping()


def test_configs_from_the_same_text_share_no_mutable_value() -> None:
    text = values.canonical_json(CONFIG_RECORDS[2])
    first = TaskConfig.from_text("t_import", text)
    first.with_params["start"]["$k"].append(3)  # type: ignore[index]
    first.extra["color"]["$x"].clear()  # type: ignore[index]
    second = TaskConfig.from_text("t_import", text)
    assert second.to_mapping() == CONFIG_RECORDS[2]
    assert TaskConfig.from_text("t_import", values.canonical_json(CONFIG_RECORDS[0])).with_params == {}


def test_a_config_validated_once_is_not_validated_again(monkeypatch: pytest.MonkeyPatch) -> None:
    text = values.canonical_json(config("t_once", unless=["x"]).to_mapping())
    TaskConfig.from_text("t_once", text)
    calls: list[str] = []
    original = TaskConfig.from_mapping.__func__  # type: ignore[attr-defined]

    def counting(cls: type[TaskConfig], name: str, directives: Any) -> TaskConfig:
        calls.append(name)
        return original(cls, name, directives)  # type: ignore[no-any-return]

    monkeypatch.setattr(TaskConfig, "from_mapping", classmethod(counting))
    assert TaskConfig.from_text("t_once", text).unless == ("x",)
    assert TaskConfig.from_text("t_other", text).name == "t_other"  # another name: validated
    assert calls == ["t_other"]


def test_an_invalid_config_text_is_refused_every_time() -> None:
    text = values.canonical_json({"run": RUN})
    for _ in range(2):
        with pytest.raises(ConfigurationError, match="'after'"):
            TaskConfig.from_text("t_bad", text)
