"""Smoke run of ``python -m benchmarks.celery_runner --quick``: real workers, a table, a JSON file.

Rates are never asserted beyond being measured (a noisy machine makes them
meaningless in a test); every fire must have completed, or the run fails.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from triggers_conformance.servers import Server, port_answers, serve

ROOT = Path(__file__).resolve().parent.parent


def test_the_celery_benchmark_runs_end_to_end(tmp_path: Path) -> None:
    pytest.importorskip("triggers_celery", reason="triggers-celery is not installed")
    for server in (Server("Redis", "127.0.0.1", 6379), Server("PostgreSQL", "127.0.0.1", 5432)):
        with serve(server):
            assert port_answers(server.host, server.port)
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks.celery_runner", "--quick", "--out", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=300, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    [written] = tmp_path.glob("celery-*.json")
    result = json.loads(written.read_text())
    assert [(row["runner"], row["workers"]) for row in result["rows"]] == [("threading", 4), ("celery (redis)", 1)]
    assert all(row["fires"] == 40 and row["fires_per_s"] > 0 and row["completions_per_s"] > 0
               for row in result["rows"])
    assert "| celery (redis) | 1 |" in finished.stdout
