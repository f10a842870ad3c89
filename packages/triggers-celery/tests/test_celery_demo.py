"""``./run demo --runner celery``: the survey demo on a Celery worker, as its README says.

The worker is started the documented way (``celery -A survey_celery worker``)
and the demo keeps its sessions in its default SQLite file, which the worker
opens too: the demo ships the file's absolute path in its messages.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest
from celery_servers import BROKERS, REDIS_URL
from celery_workers import EXAMPLES_DIR, start_worker
from kombu import Connection

from triggers_conformance.servers import serve


def test_the_demo_runs_on_a_celery_worker(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve(BROKERS["redis"]):
        pass
    queue = f"triggers-demo-test-{uuid.uuid4().hex[:10]}"
    env = {"TRIGGERS_DEMO_BROKER": REDIS_URL, "TRIGGERS_DEMO_QUEUE": queue}
    worker = start_worker("demo", tmp_path, env, [queue], app="survey_celery", workdir=EXAMPLES_DIR)
    try:
        worker.wait_ready()
        result = subprocess.run(
            [sys.executable, str(EXAMPLES_DIR / "survey.py"), "--runner", "celery"],
            capture_output=True, text=True, timeout=180, check=False, cwd=tmp_path,
            env={**os.environ, **env},
        )
    finally:
        worker.stop()
        with Connection(REDIS_URL) as connection:
            connection.default_channel.queue_delete(queue)
    assert result.returncode == 0, (result.stdout, result.stderr, worker.tail())
    lines = [" ".join(line.split()) for line in result.stdout.splitlines()]
    assert "runner 'celery'" in lines[0]
    assert "t_importResponses#3 finished 1 t_importResponses#1 INFO yes" in lines
    assert "Unresolved instances: none" in lines
    assert any(line.startswith("Score: S-1042 scored 75.0/100") for line in lines)
    assert (tmp_path / "triggers-demo.db").is_file()
    assert "succeeded" in worker.tail()  # the tasks ran on the worker
