"""``python -m benchmarks [--quick] [--targets a,b] [--out DIR]``: run, print, save."""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.scenarios import FULL, QUICK, measure_target
from benchmarks.targets import TARGET_NAMES, Run, open_targets


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Measure every installed storage backend whose server is reachable.",
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, few repetitions (a smoke run)")
    parser.add_argument(
        "--targets",
        help=f"comma-separated subset of: {', '.join(TARGET_NAMES)} (default: all available)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results",
        help="folder for the JSON and PNG files (default: benchmarks/results)",
    )
    return parser.parse_args(argv)


def _machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    arguments = _arguments(argv)
    names = [name.strip() for name in arguments.targets.split(",") if name.strip()] if arguments.targets else None
    plan = QUICK if arguments.quick else FULL
    started = datetime.now(UTC)
    stamp = started.strftime("%Y%m%dT%H%M%SZ")
    arguments.out.mkdir(parents=True, exist_ok=True)

    def log(message: str) -> None:
        print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)

    run: dict[str, Any] = {
        "date": started.isoformat(timespec="seconds"),
        "quick": arguments.quick,
        "machine": _machine(),
        "plan": {"sizes": list(plan.sizes), "workers": list(plan.workers), "reps": plan.reps,
                 "min_reps": plan.min_reps, "budget_seconds": plan.budget_seconds,
                 "throughput_seconds": plan.throughput_seconds},
        "targets": {},
    }
    with tempfile.TemporaryDirectory(prefix="triggers-bench-") as workdir:
        bench_run = Run.new(Path(workdir))
        try:
            with open_targets(names, bench_run) as (targets, skipped):
                run["skipped"] = skipped
                for name, reason in skipped.items():
                    log(f"skipped {name}: {reason}")
                for target in targets:
                    figures = measure_target(target, plan, f"{bench_run.prefix}{target.name}-", log)
                    figures["summary"] = report.summarise(figures, list(plan.sizes))
                    run["targets"][target.name] = figures
        except ValueError as error:
            print(f"python -m benchmarks: {error}", file=sys.stderr)
            return 2
    run["seconds"] = round((datetime.now(UTC) - started).total_seconds(), 1)
    json_path = arguments.out / f"benchmark-{stamp}.json"
    png_path = arguments.out / f"benchmark-{stamp}.png"
    report.write_json(run, json_path)
    report.write_chart(run, png_path)
    print(report.table(run))
    print(f"\nwrote {json_path} and {png_path} ({run['seconds']} s)")
    return 0 if run["targets"] else 1


if __name__ == "__main__":
    sys.exit(main())
