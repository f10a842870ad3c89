"""Smoke run of ``python -m benchmarks --quick``: files written, and counts that cannot be faked.

Times are never asserted (a noisy machine makes them meaningless in a test);
the counts are exact, so they are: the sql backend's fire sends the same
statements at 10 and at 1,000 instances and writes about the same bytes,
while the naive baseline rewrites a blob that grows with the session.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path, str]:
    out = tmp_path_factory.mktemp("bench")
    finished = subprocess.run(
        [sys.executable, "-m", "benchmarks", "--quick", "--targets", "sql-sqlite,cache-redis",
         "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=120, check=False,
    )
    assert finished.returncode == 0, finished.stderr[-3000:]
    [json_file] = out.glob("benchmark-*.json")
    [png_file] = out.glob("benchmark-*.png")
    return json.loads(json_file.read_text()), png_file, finished.stdout


def test_writes_the_json_the_png_and_the_table(quick_run: tuple[dict[str, Any], Path, str]) -> None:
    run, png, printed = quick_run
    assert run["quick"] is True
    assert run["plan"]["sizes"] == [10, 1000]
    sqlite = run["targets"]["sql-sqlite"]
    assert sqlite["errors"] == []
    for kind in ("sizes", "naive"):
        assert set(sqlite[kind]) == {"10", "1000"}
        for figures in sqlite[kind].values():
            for sample in (figures["fire"], figures["queued_fire"], figures["load"]):
                assert sample["reps"] >= 2
                assert 0 < sample["median_ms"] <= sample["p95_ms"]
    assert set(sqlite["throughput"]["distinct"]) == set(sqlite["throughput"]["shared"]) == {"1", "2"}
    assert all(rate > 0 for rate in sqlite["throughput"]["distinct"].values())
    assert png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")
    assert "sql-sqlite" in printed and "fire ms @1,000" in printed and "queued fire ms @1,000" in printed


def test_sql_fire_does_the_same_io_at_10_and_1000_instances(
    quick_run: tuple[dict[str, Any], Path, str],
) -> None:
    sqlite = run_target(quick_run, "sql-sqlite")
    small, large = sqlite["sizes"]["10"], sqlite["sizes"]["1000"]
    assert small["round_trips_per_fire"] == large["round_trips_per_fire"] > 0
    assert sqlite["summary"]["round_trips_constant"] is True
    # Incremental saves: the history is never rewritten (a few bytes differ: longer numbers).
    assert large["bytes_written_per_fire"] < 1.1 * small["bytes_written_per_fire"]
    # Eager fire: schedule and claim the task, then record its outcome: two saves.
    assert small["saves_per_fire"] == large["saves_per_fire"] == 2
    # Queued fire: apply the trigger and schedule, one save.
    assert small["saves_per_queued_fire"] == large["saves_per_queued_fire"] == 1
    # A lease per save, unless the backend saves optimistically (then none at all).
    leases_per_save = 0 if sqlite["optimistic_saves"] else 1
    assert small["lock_cycles_per_fire"] == large["lock_cycles_per_fire"] == 2 * leases_per_save
    assert small["lock_cycles_per_queued_fire"] == leases_per_save
    assert small["round_trips_per_queued_fire"] == large["round_trips_per_queued_fire"] > 0
    assert small["round_trips_per_queued_fire"] < small["round_trips_per_fire"]
    assert sqlite["floor"]["round_trips_per_fire"] == 4  # BEGIN IMMEDIATE, SELECT, UPDATE, COMMIT


def test_naive_baseline_rewrites_the_whole_session(quick_run: tuple[dict[str, Any], Path, str]) -> None:
    for name, target in quick_run[0]["targets"].items():
        small, large = target["naive"]["10"], target["naive"]["1000"]
        assert large["bytes_written_per_fire"] > 20 * small["bytes_written_per_fire"], name


def run_target(quick_run: tuple[dict[str, Any], Path, str], name: str) -> dict[str, Any]:
    target: dict[str, Any] = quick_run[0]["targets"][name]
    return target
