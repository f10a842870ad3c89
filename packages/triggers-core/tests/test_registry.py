from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from core_toy_backends import DictBackend

import triggers
from triggers.errors import BackendNotFoundError, ConfigurationError
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.registry import (
    BACKEND_ENV,
    OPTIONS_ENV,
    manager_from_config,
    storage_backends,
    storage_from_config,
    storage_from_env,
    task_runners,
    trigger_managers,
)
from triggers.runners import EagerTaskRunner, ThreadingTaskRunner


@pytest.fixture
def toy_name() -> Iterator[str]:
    """A backend name registered only for this test."""
    name = f"toy-{uuid.uuid4().hex[:8]}"
    yield name
    storage_backends.unregister(name)


# --- storage_backends ---------------------------------------------------------


def test_memory_backend_is_installed_through_its_entry_point() -> None:
    assert "memory" in storage_backends.names()
    assert storage_backends.load("memory") is MemoryStorageBackend


def test_names_are_sorted() -> None:
    names = storage_backends.names()
    assert names == sorted(names)


def test_get_builds_a_memory_backend(uid: str, namespace: str) -> None:
    storage = storage_backends.get("memory", uid, namespace=namespace, lease_ttl=5)
    assert isinstance(storage, MemoryStorageBackend)
    assert storage.uid == uid
    assert storage.namespace == namespace
    assert storage.lease_ttl == 5.0


def test_unknown_backend_lists_installed_names(uid: str) -> None:
    with pytest.raises(BackendNotFoundError) as caught:
        storage_backends.get("no-such-backend", uid)
    message = str(caught.value)
    assert "'no-such-backend'" in message
    assert "memory" in message
    assert "triggers.storage_backends" in message
    assert isinstance(caught.value, LookupError)


def test_bad_option_is_refused_naming_it(uid: str, namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="no_such_option"):
        storage_backends.get("memory", uid, namespace=namespace, no_such_option=1)


def test_bad_option_of_a_backend_without_var_kwargs_is_refused(uid: str, toy_name: str) -> None:
    class Strict(DictBackend):
        def __init__(self, uid: str, *, store: dict[str, str] | None = None) -> None:
            super().__init__(uid, store=store)

    storage_backends.register(toy_name, Strict)
    with pytest.raises(ConfigurationError, match="colour"):
        storage_backends.get(toy_name, uid, colour="red")


def test_bad_option_value_is_refused(uid: str, namespace: str) -> None:
    with pytest.raises(ConfigurationError, match="lease_ttl"):
        storage_backends.get("memory", uid, namespace=namespace, lease_ttl=0)


def test_register_and_unregister_at_run_time(uid: str, toy_name: str) -> None:
    assert toy_name not in storage_backends.names()
    storage_backends.register(toy_name, DictBackend)
    assert toy_name in storage_backends.names()
    store: dict[str, str] = {}
    storage = storage_backends.get(toy_name, uid, store=store)
    assert isinstance(storage, DictBackend)
    assert storage.store is store
    assert storage_backends.distribution(toy_name) is None

    storage_backends.unregister(toy_name)
    assert toy_name not in storage_backends.names()
    with pytest.raises(BackendNotFoundError):
        storage_backends.get(toy_name, uid)


def test_registered_class_takes_precedence_over_the_entry_point(uid: str) -> None:
    storage_backends.register("memory", DictBackend)
    try:
        assert storage_backends.load("memory") is DictBackend
    finally:
        storage_backends.unregister("memory")
    assert storage_backends.load("memory") is MemoryStorageBackend
    assert "memory" in storage_backends.names()


def test_unregister_of_an_unknown_name_is_a_no_op() -> None:
    storage_backends.unregister(f"never-{uuid.uuid4().hex}")


def test_distribution_of_memory_is_triggers_core() -> None:
    assert storage_backends.distribution("memory") == ("triggers-core", triggers.__version__)


def test_distribution_of_an_unknown_name_is_none() -> None:
    assert storage_backends.distribution("no-such-backend") is None


# --- the other registries -----------------------------------------------------


def test_trigger_managers_have_the_default_manager() -> None:
    assert "default" in trigger_managers.names()
    assert trigger_managers.load("default") is TriggerManager


def test_task_runners_have_eager_and_threading() -> None:
    assert {"eager", "threading"} <= set(task_runners.names())
    assert task_runners.load("eager") is EagerTaskRunner
    assert task_runners.load("threading") is ThreadingTaskRunner
    runner = task_runners.get("eager")
    assert isinstance(runner, EagerTaskRunner)


def test_unknown_runner_says_runner() -> None:
    with pytest.raises(BackendNotFoundError, match=r"no task runner named 'warp'.*eager"):
        task_runners.load("warp")


# --- storage_from_config ------------------------------------------------------


def test_storage_from_config(uid: str, namespace: str) -> None:
    storage = storage_from_config(uid, {"backend": "memory", "options": {"namespace": namespace, "lock_timeout": 2}})
    assert isinstance(storage, MemoryStorageBackend)
    assert storage.uid == uid
    assert storage.namespace == namespace
    assert storage.lock_timeout == 2.0


def test_storage_from_config_without_options(uid: str) -> None:
    storage = storage_from_config(uid, {"backend": "memory"})
    assert isinstance(storage, MemoryStorageBackend)
    assert storage.namespace == "default"


@pytest.mark.parametrize("config", [{}, {"options": {}}, {"backend": ""}, {"backend": 5}])
def test_storage_from_config_needs_a_backend_name(uid: str, config: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError, match="'backend'"):
        storage_from_config(uid, config)


def test_storage_from_config_refuses_unknown_keys(uid: str) -> None:
    with pytest.raises(ConfigurationError, match=r"unknown keys.*'optoins'"):
        storage_from_config(uid, {"backend": "memory", "optoins": {}})


@pytest.mark.parametrize("options", ["namespace=a", [("namespace", "a")], 5, {1: "a"}])
def test_storage_from_config_refuses_options_that_are_not_a_str_mapping(uid: str, options: Any) -> None:
    with pytest.raises(ConfigurationError, match="'options' must be a mapping"):
        storage_from_config(uid, {"backend": "memory", "options": options})


@pytest.mark.parametrize("options", [[], "", 0])
def test_storage_from_config_refuses_empty_options_of_the_wrong_type(uid: str, options: Any) -> None:
    with pytest.raises(ConfigurationError, match="'options' must be a mapping"):
        storage_from_config(uid, {"backend": "memory", "options": options})


@pytest.mark.parametrize("config", [None, "memory", ["memory"]])
def test_storage_from_config_refuses_a_non_mapping(uid: str, config: Any) -> None:
    with pytest.raises(ConfigurationError, match="must be a mapping"):
        storage_from_config(uid, config)


def test_storage_from_config_unknown_backend(uid: str) -> None:
    with pytest.raises(BackendNotFoundError, match="memory"):
        storage_from_config(uid, {"backend": "nope"})


# --- storage_from_env ---------------------------------------------------------


def test_storage_from_env(uid: str, namespace: str) -> None:
    environ = {BACKEND_ENV: "memory", OPTIONS_ENV: f'{{"namespace": "{namespace}", "lease_ttl": 3}}'}
    storage = storage_from_env(uid, environ)
    assert isinstance(storage, MemoryStorageBackend)
    assert storage.namespace == namespace
    assert storage.lease_ttl == 3.0


def test_env_variable_names() -> None:
    assert BACKEND_ENV == "TRIGGERS_STORAGE_BACKEND"
    assert OPTIONS_ENV == "TRIGGERS_STORAGE_OPTIONS"


def test_storage_from_env_without_options(uid: str) -> None:
    storage = storage_from_env(uid, {"TRIGGERS_STORAGE_BACKEND": "memory"})
    assert isinstance(storage, MemoryStorageBackend)


def test_storage_from_env_invalid_json(uid: str) -> None:
    environ = {BACKEND_ENV: "memory", OPTIONS_ENV: "{namespace: a}"}
    with pytest.raises(ConfigurationError, match="TRIGGERS_STORAGE_OPTIONS is not valid JSON"):
        storage_from_env(uid, environ)


@pytest.mark.parametrize("raw", ["[1, 2]", '"text"', "3", "null", "true"])
def test_storage_from_env_options_must_be_a_json_object(uid: str, raw: str) -> None:
    environ = {BACKEND_ENV: "memory", OPTIONS_ENV: raw}
    with pytest.raises(ConfigurationError, match="TRIGGERS_STORAGE_OPTIONS"):
        storage_from_env(uid, environ)


def test_storage_from_env_bad_option(uid: str) -> None:
    environ = {BACKEND_ENV: "memory", OPTIONS_ENV: '{"colour": "red"}'}
    with pytest.raises(ConfigurationError, match="colour"):
        storage_from_env(uid, environ)


@pytest.mark.parametrize("environ", [{}, {BACKEND_ENV: ""}, {OPTIONS_ENV: "{}"}])
def test_storage_from_env_unset_without_default(uid: str, environ: dict[str, str]) -> None:
    with pytest.raises(ConfigurationError, match="TRIGGERS_STORAGE_BACKEND") as caught:
        storage_from_env(uid, environ)
    assert "memory" in str(caught.value)


def test_storage_from_env_unset_with_default(uid: str, namespace: str) -> None:
    environ = {OPTIONS_ENV: f'{{"namespace": "{namespace}"}}'}
    storage = storage_from_env(uid, environ, default="memory")
    assert isinstance(storage, MemoryStorageBackend)
    assert storage.namespace == namespace


def test_storage_from_env_variable_wins_over_default(uid: str, toy_name: str) -> None:
    storage_backends.register(toy_name, DictBackend)
    storage = storage_from_env(uid, {BACKEND_ENV: toy_name}, default="memory")
    assert isinstance(storage, DictBackend)


def test_storage_from_env_unknown_backend(uid: str) -> None:
    with pytest.raises(BackendNotFoundError, match="'nope'"):
        storage_from_env(uid, {BACKEND_ENV: "nope"})


def test_manager_from_config_picks_manager_and_runner_by_name(memory_storage: MemoryStorageBackend) -> None:
    default = manager_from_config(memory_storage, environ={})
    assert type(default) is TriggerManager and isinstance(default.runner, EagerTaskRunner)
    threaded = manager_from_config(memory_storage, {"runner": "threading"}, environ={})
    assert isinstance(threaded.runner, ThreadingTaskRunner)
    threaded.runner.close()
    from_env = manager_from_config(memory_storage, environ={"TRIGGERS_RUNNER": "threading"})
    assert isinstance(from_env.runner, ThreadingTaskRunner)
    from_env.runner.close()


def test_manager_from_config_refuses_unknown_names_and_keys(memory_storage: MemoryStorageBackend) -> None:
    with pytest.raises(BackendNotFoundError, match="eager"):
        manager_from_config(memory_storage, {"runner": "no-such-runner"}, environ={})
    with pytest.raises(ConfigurationError, match="unknown keys"):
        manager_from_config(memory_storage, {"runnr": "eager"}, environ={})


def test_selection_of_remembers_how_the_registry_built_an_object(namespace: str) -> None:
    from triggers.registry import selection_of

    built = storage_backends.get("memory", "sel-1", namespace=namespace, lease_ttl=5)
    assert selection_of(built) == ("memory", {"namespace": namespace, "lease_ttl": 5})
    assert selection_of(MemoryStorageBackend("sel-2", namespace=namespace)) is None
    assert selection_of(42) is None  # takes no weak reference


def test_runner_from_spec_takes_names_objects_and_factories() -> None:
    from triggers.registry import runner_from_spec
    from triggers.runners import EagerTaskRunner, ThreadingTaskRunner

    assert isinstance(runner_from_spec("eager"), EagerTaskRunner)
    made = runner_from_spec("triggers.runners:ThreadingTaskRunner")  # a class: called
    assert isinstance(made, ThreadingTaskRunner)
    made.close()
    with pytest.raises(ConfigurationError, match="is a str, not a TaskRunner"):
        runner_from_spec("triggers.registry:RUNNER_ENV")
    with pytest.raises(ConfigurationError, match="expected a registry name or module:attribute"):
        runner_from_spec(":x")
