"""The names Triggers 2.0 code imports, kept as aliases so a port changes imports only (issue 16)."""

from __future__ import annotations

import builtins
import importlib
import sys
from typing import Any

import pytest

import triggers.locking
import triggers.manager
import triggers.registry
import triggers.runners
import triggers.storages
import triggers.storages.base
import triggers.task
from triggers.errors import LockTimeoutError, MaxRetriesExceeded, Retry, StatusChange
from triggers.memory import MemoryStorageBackend
from triggers.storage import TriggerStorageBackend
from triggers.tasks import TaskContext, TriggerTask


def test_storages_base_names_the_base_class_and_registry() -> None:
    assert triggers.storages.base.BaseTriggerStorage is TriggerStorageBackend
    assert triggers.storages.base.storage_backends is triggers.registry.storage_backends
    assert triggers.storages.BaseTriggerStorage is TriggerStorageBackend
    assert triggers.storages.storage_backends is triggers.registry.storage_backends


def test_a_backend_subclassing_base_trigger_storage_is_a_backend(uid: str) -> None:
    class DictStorage(triggers.storages.base.BaseTriggerStorage):
        documents: dict[str, dict[str, object]] = {}

        def _load_from_backend(self) -> tuple[dict[str, object], dict[str, object], dict[str, object]]:
            document = self.documents.get(self.uid) or {}
            return document.get("tasks", {}), document.get("instances", {}), document.get("metas", {})  # type: ignore[return-value]

        def _save(self) -> None:
            self.documents[self.uid] = {
                "tasks": self._serialize(self._configs),
                "instances": self._serialize(self._instances),
                "metas": self._serialize(self._metas),
            }

    manager = triggers.manager.TriggerManager(DictStorage(uid))
    manager.update_configuration({"t_name": {"after": ["start"], "run": "core_sample_tasks.name_of_instance"}})
    manager.fire("start")
    assert DictStorage(uid)["t_name#0"].metadata["result"] == {"ran": "t_name#0"}


def test_cache_storage_backend_is_the_triggers_cache_backend() -> None:
    triggers_cache = pytest.importorskip("triggers_cache")
    cache_module = importlib.import_module("triggers.storages.cache")
    assert cache_module.CacheStorageBackend is triggers_cache.CacheStorageBackend
    assert triggers.storages.CacheStorageBackend is triggers_cache.CacheStorageBackend
    # Never imported by a star import, so a missing triggers-cache cannot break one.
    assert "CacheStorageBackend" not in triggers.storages.__all__


def test_without_triggers_cache_the_import_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "triggers_cache", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "triggers.storages.cache", raising=False)
    with pytest.raises(ImportError, match="pip install triggers-cache") as raised:
        importlib.import_module("triggers.storages.cache")
    assert isinstance(raised.value.__cause__, ModuleNotFoundError)
    monkeypatch.delitem(sys.modules, "triggers.storages.cache", raising=False)
    with pytest.raises(ImportError, match="pip install triggers-cache"):
        from triggers.storages import CacheStorageBackend  # noqa: F401


def test_an_import_error_inside_triggers_cache_is_not_disguised(monkeypatch: pytest.MonkeyPatch) -> None:
    # triggers-cache is there, but a module it needs is not (a broken install):
    # that error is the one to see, not advice to install triggers-cache.
    real_import = builtins.__import__

    def broken_import(name: str, *args: Any, **kwargs: Any) -> Any:
        if name == "triggers_cache":
            raise ModuleNotFoundError("No module named 'django'", name="django")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken_import)
    monkeypatch.delitem(sys.modules, "triggers.storages.cache", raising=False)
    with pytest.raises(ModuleNotFoundError) as raised:
        importlib.import_module("triggers.storages.cache")
    assert raised.value.name == "django"


def test_an_unknown_name_of_triggers_storages_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchBackend"):
        triggers.storages.NoSuchBackend  # noqa: B018


def test_task_module_has_2_0_names() -> None:
    assert triggers.task.TriggerTask is TriggerTask
    assert triggers.task.TaskContext is TaskContext
    assert triggers.task.StatusChange is StatusChange
    assert triggers.task.Retry is Retry
    assert triggers.task.MaxRetriesExceeded is MaxRetriesExceeded


def test_runners_manager_and_locking_have_2_0_names() -> None:
    assert triggers.runners.BaseTaskRunner is triggers.runners.TaskRunner
    assert triggers.runners.task_runners is triggers.registry.task_runners
    assert triggers.manager.trigger_managers is triggers.registry.trigger_managers
    assert triggers.locking.LockAcquisitionFailed is LockTimeoutError


def test_lock_acquisition_failed_is_raised_by_a_lock_that_does_not_wait(uid: str, namespace: str) -> None:
    holder = MemoryStorageBackend(uid, namespace=namespace)
    other = MemoryStorageBackend(uid, namespace=namespace)
    with holder.acquire_lock(), pytest.raises(triggers.locking.LockAcquisitionFailed), other.acquire_lock(timeout=0):
        pass


def test_task_context_has_2_0_attribute_names(memory_storage: MemoryStorageBackend) -> None:
    manager = triggers.manager.TriggerManager(memory_storage)
    manager.update_configuration({"t_ctx": {"after": ["start"], "run": "core_sample_tasks.name_of_instance"}})
    manager.fire("start")
    context = TaskContext(manager, memory_storage["t_ctx#0"])
    assert context.instance_name == "t_ctx#0"
    assert context.storage_uid == memory_storage.uid == context.session_uid
