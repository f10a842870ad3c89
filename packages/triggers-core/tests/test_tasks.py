from __future__ import annotations

import json.decoder
import logging
import os.path
from collections.abc import Iterator

import core_sample_tasks
import pytest

from triggers.errors import ConfigurationError, InvalidTransitionError
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.tasks import TaskContext, TriggerTask, resolve_task
from triggers.types import InstanceStatus, TaskConfig, TaskInstance


@pytest.fixture
def manager(memory_storage: MemoryStorageBackend) -> TriggerManager:
    return TriggerManager(memory_storage)


def make_context(manager: TriggerManager, name: str = "t_x", **directives: object) -> TaskContext:
    config = TaskConfig.from_mapping(name, {"after": ["start"], "run": "core_sample_tasks.name_of_instance", **directives})
    return TaskContext(manager, TaskInstance(f"{name}#0", config, kwargs={"start": {"page": 1}}))


# --- resolve_task -------------------------------------------------------------


def test_resolve_dotted_function_path() -> None:
    assert resolve_task("t_x", "os.path.join") is os.path.join


def test_resolve_colon_path_to_a_class_attribute() -> None:
    assert resolve_task("t_x", "json.decoder:JSONDecoder.decode") is json.decoder.JSONDecoder.decode
    assert resolve_task("t_x", "core_sample_tasks:Holder.run") is core_sample_tasks.Holder.run


def test_resolve_colon_path_to_a_module_function() -> None:
    assert resolve_task("t_x", "core_sample_tasks:name_of_instance") is core_sample_tasks.name_of_instance


def test_resolve_trigger_task_subclass_runs_a_fresh_object_each_time(manager: TriggerManager) -> None:
    task = resolve_task("t_x", "core_sample_tasks.ClassTask")
    assert task is not core_sample_tasks.ClassTask
    context = make_context(manager)
    before = core_sample_tasks.ClassTask.created
    assert task(context) == {"class_task": {"start": {"page": 1}}}
    assert task(context) == {"class_task": {"start": {"page": 1}}}
    assert core_sample_tasks.ClassTask.created == before + 2


@pytest.mark.parametrize(
    ("path", "fragment"),
    [
        ("core_sample_tasks.NOT_CALLABLE", "is not callable"),
        ("no_such_package_xyz.module.func", "cannot be imported"),
        ("core_sample_tasks.missing", "cannot be imported"),
        ("core_sample_tasks:Holder.missing", "cannot be imported"),
        ("core_sample_tasks:NOT_CALLABLE.real.imag", "is not callable"),
        ("single_name", "must be a dotted path"),
        ("core_sample_tasks:", "must be a dotted path"),
        (":name_of_instance", "must be a dotted path"),
        (".name_of_instance", "must be a dotted path"),
    ],
)
def test_unresolvable_run_path_names_task_and_directive(path: str, fragment: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_task("t_importSubject", path)
    message = str(caught.value)
    assert "task 't_importSubject'" in message
    assert "directive 'run'" in message
    assert fragment in message


def test_import_failure_is_chained() -> None:
    with pytest.raises(ConfigurationError) as caught:
        resolve_task("t_x", "no_such_package_xyz.func")
    assert isinstance(caught.value.__cause__, ImportError)


def test_trigger_task_without_run_is_not_implemented(manager: TriggerManager) -> None:
    class Lazy(TriggerTask):
        pass

    with pytest.raises(NotImplementedError, match="Lazy must implement _run"):
        Lazy()(make_context(manager))


# --- TaskContext --------------------------------------------------------------


def test_trigger_kwargs_merge_with_params_under_fired_kwargs(manager: TriggerManager) -> None:
    config = TaskConfig.from_mapping(
        "t_x",
        {
            "after": ["start", "other"],
            "run": "core_sample_tasks.name_of_instance",
            "withParams": {
                "start": {"page": 0, "size": 10, "filter": {"lang": "en", "tags": ["a"]}},
                "never": {"z": 1},
            },
        },
    )
    instance = TaskInstance(
        "t_x#0", config,
        kwargs={"start": {"page": 3, "filter": {"tags": ["b"]}}, "other": {"b": 2}},
    )
    context = TaskContext(manager, instance)
    # As in Triggers 2.0: merged recursively (fired kwargs win, lists are
    # replaced), and a withParams entry of a trigger that is not the task's
    # is passed along as it is.
    assert context.trigger_kwargs == {
        "start": {"page": 3, "size": 10, "filter": {"lang": "en", "tags": ["b"]}},
        "other": {"b": 2},
        "never": {"z": 1},
    }
    # The instance and the config are not modified by the merge.
    assert instance.kwargs == {"start": {"page": 3, "filter": {"tags": ["b"]}}, "other": {"b": 2}}
    assert config.with_params["start"] == {"page": 0, "size": 10, "filter": {"lang": "en", "tags": ["a"]}}


def test_context_exposes_manager_instance_and_session(manager: TriggerManager) -> None:
    context = make_context(manager)
    assert context.manager is manager
    assert context.task_instance.name == "t_x#0"
    assert context.session_uid == manager.storage.uid
    assert context.requested_status is None
    assert context.max_log_level == logging.NOTSET


@pytest.fixture
def quiet_task_logger() -> Iterator[str]:
    """A task whose logger only lets CRITICAL through."""
    name = "t_quiet"
    logger = logging.getLogger(f"triggers.tasks.{name}")
    previous = logger.level
    logger.setLevel(logging.CRITICAL)
    yield name
    logger.setLevel(previous)


def test_logger_records_highest_level_even_when_disabled(
    manager: TriggerManager, quiet_task_logger: str, caplog: pytest.LogCaptureFixture
) -> None:
    context = make_context(manager, quiet_task_logger)
    log = context.get_logger_context()
    assert not log.isEnabledFor(logging.WARNING)
    log.debug("detail")
    assert context.max_log_level == logging.DEBUG
    log.warning("careful")
    log.info("lower again")
    assert context.max_log_level == logging.WARNING
    assert caplog.records == []


def test_logger_is_also_a_context_manager(manager: TriggerManager) -> None:
    context = make_context(manager)
    with context.get_logger_context() as log:
        assert log is context.get_logger_context()
        log.error("inside the block")
    assert context.max_log_level == logging.ERROR


def test_logger_records_error_and_exception_levels(manager: TriggerManager) -> None:
    context = make_context(manager)
    log = context.get_logger_context()
    try:
        raise ValueError("x")
    except ValueError:
        log.exception("failed")
    assert context.max_log_level == logging.ERROR
    log.log(logging.CRITICAL + 5, "custom level")
    assert context.max_log_level == logging.CRITICAL + 5


def test_logger_is_per_task_and_carries_session_and_instance(
    manager: TriggerManager, caplog: pytest.LogCaptureFixture
) -> None:
    context = make_context(manager, "t_loud")
    log = context.get_logger_context()
    assert context.get_logger_context() is log
    with caplog.at_level(logging.INFO, logger="triggers.tasks.t_loud"):
        log.info("hello %s", "there", extra={"mine": 1})
    (record,) = caplog.records
    assert record.name == "triggers.tasks.t_loud"
    assert record.getMessage() == "hello there"
    assert record.triggers_session == manager.storage.uid  # type: ignore[attr-defined]
    assert record.triggers_instance == "t_loud#0"  # type: ignore[attr-defined]
    assert record.mine == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize("status", ["running", InstanceStatus.FAILED, "skipped", "finished"])
def test_set_status(manager: TriggerManager, status: str) -> None:
    context = make_context(manager)
    context.set_status(status)
    assert context.requested_status is InstanceStatus(status)


@pytest.mark.parametrize(
    "status", ["unstarted", "abandoned", InstanceStatus.REPLAYED, InstanceStatus.SCHEDULED]
)
def test_set_status_refuses_what_a_running_task_cannot_become(manager: TriggerManager, status: str) -> None:
    context = make_context(manager)
    context.set_status("skipped")
    with pytest.raises(InvalidTransitionError) as caught:
        context.set_status(status)
    message = str(caught.value)
    assert "'t_x#0'" in message
    assert f"cannot end {InstanceStatus(status).value}" in message
    assert context.requested_status is InstanceStatus.SKIPPED  # the earlier choice stands


def test_set_status_refuses_an_unknown_status(manager: TriggerManager) -> None:
    context = make_context(manager)
    with pytest.raises(ValueError):
        context.set_status("paused")
    assert context.requested_status is None
