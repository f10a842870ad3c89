"""Behaviours Triggers 2.0 defined that the manager must keep (issue 16).

Each is one the original's documentation or tests rely on: a finished
instance remembers its result and the kwargs it ran with, an ``andEvery`` task
with ``after: []`` runs once per fire, a task may use its logger as a context
manager.
"""

from __future__ import annotations

import logging

from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.types import InstanceStatus, TaskInstance


def test_a_finished_instance_records_its_result_and_actual_kwargs(memory_storage: MemoryStorageBackend) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({
        "t_name": {
            "after": ["start"],
            "run": "core_sample_tasks.name_of_instance",
            "withParams": {"start": {"page": 1, "lang": "en"}},
        },
    })
    manager.fire("start", {"page": 2})
    instance = MemoryStorageBackend(memory_storage.uid, namespace=memory_storage.namespace)["t_name#0"]
    assert instance.status is InstanceStatus.FINISHED
    assert instance.metadata[TaskInstance.META_RESULT] == {"ran": "t_name#0"}
    assert instance.metadata[TaskInstance.META_ACTUAL_KWARGS] == {"start": {"page": 2, "lang": "en"}}


def test_a_failed_instance_records_the_exception(memory_storage: MemoryStorageBackend) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({"t_fail": {"after": ["start"], "run": "core_sample_tasks.explode"}})
    manager.fire("start", {"n": 1})
    instance = memory_storage["t_fail#0"]
    assert instance.status is InstanceStatus.FAILED
    assert TaskInstance.META_RESULT not in instance.metadata
    assert instance.metadata[TaskInstance.META_ACTUAL_KWARGS] == {"start": {"n": 1}}
    assert instance.metadata[TaskInstance.META_EXCEPTION_TYPE] == instance.metadata["error"]["type"]
    assert "Traceback" in instance.metadata[TaskInstance.META_EXCEPTION_INFO]
    assert instance.log_level == logging.ERROR
    assert memory_storage.get_instances_with_unresolved_logs() == [instance]


def test_and_every_with_empty_after_runs_once_per_fire(memory_storage: MemoryStorageBackend) -> None:
    manager = TriggerManager(memory_storage)
    manager.update_configuration({
        "t_page": {"after": [], "andEvery": "page", "run": "core_sample_tasks.name_of_instance"},
    })
    for number in range(3):
        manager.fire("page", {"number": number})
    instances = list(memory_storage)
    assert [i.name for i in instances] == ["t_page#0", "t_page#1", "t_page#2"]
    assert [i.kwargs for i in instances] == [{"page": {"number": n}} for n in range(3)]
    assert {i.status for i in instances} == {InstanceStatus.FINISHED}
