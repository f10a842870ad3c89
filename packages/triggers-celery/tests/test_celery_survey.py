"""The survey demo's workflow end to end on Celery: PostgreSQL, four worker processes.

The same steps run once on the eager runner in memory, as the reference:
the Celery run must end in the same statuses and the same score, with every
instance started exactly once (the attempts its run lease recorded).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import pytest
import survey
from celery_cluster import ClusterFactory

from triggers import run_leases
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.runners import EagerTaskRunner, TaskRunner
from triggers.storage import TriggerStorageBackend


def _run_survey(storage: TriggerStorageBackend, runner: TaskRunner) -> tuple[dict[str, str], Mapping[str, Any] | None]:
    workflow = survey.SurveyWorkflow(TriggerManager(storage, runner=runner), runner)
    workflow.configure()
    for step in survey.STEPS:
        workflow.run_step(step)
    storage.invalidate_cache()
    return {name: i.status.value for name, i in storage.instances.items()}, workflow.score()


def test_the_survey_workflow_on_four_worker_processes(cluster: ClusterFactory,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    expected_statuses, expected_score = _run_survey(
        MemoryStorageBackend(f"survey-{uuid.uuid4().hex[:8]}", namespace=f"ref-{uuid.uuid4().hex}"),
        EagerTaskRunner(),
    )
    setup = cluster("rabbitmq")
    (worker,) = setup.start(1, pool="prefork", concurrency=4)
    storage = setup.storage(f"survey-{uuid.uuid4().hex[:8]}")
    statuses, score = _run_survey(storage, setup.runner)
    assert statuses == expected_statuses, worker.tail()
    assert score == expected_score
    assert score is not None
    # Every instance that ran, ran once: no run lease ever ended, nothing was taken over.
    ran = {"finished", "failed", "replayed"}
    attempts = {name: run_leases.attempt_of(i) for name, i in storage.instances.items()}
    assert attempts == {name: int(statuses[name] in ran) for name in statuses}
    assert not any(run_leases.EXPIRED_ATTEMPTS_KEY in i.metadata for i in storage.instances.values())
    assert statuses["t_importResponses#1"] == "replayed"  # the failed page import
    assert "ready." in worker.tail()
