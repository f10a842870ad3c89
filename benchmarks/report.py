"""Turning a run's figures into a table, a JSON file and a PNG chart.

The table has one column per target and one row per figure; times are
medians in milliseconds with their spread ((p90 - p10) / median) after
``±``. :func:`summarise` derives the ratios the targets are judged by.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["FLOOR_TARGET", "SCALE_TARGET", "summarise", "table", "write_chart", "write_json"]

SCALE_TARGET = 1.5
"""Fire at the largest size over fire at the smallest: at most this."""
FLOOR_TARGET = 2.0
"""A queued fire (the I/O a fire needs: one read, one conditional write) over
the raw-driver floor doing just that: at most this. The eager fire also runs
its task and records the outcome, a second locked save, so it is reported
beside it without a verdict."""


def _median(figures: dict[str, Any] | None, key: str = "fire") -> float | None:
    if not figures or not figures.get(key):
        return None
    return float(figures[key]["median_ms"])


def summarise(target: dict[str, Any], planned: list[int]) -> dict[str, Any]:
    """The headline ratios of one target's figures (None where a figure is missing).

    Ratios compare the plan's smallest and largest sizes, never a smaller
    size that happened to be measured in place of a failed one.
    """
    sizes = sorted(planned)
    summary: dict[str, Any] = {
        "scale": None, "naive_scale": None, "floor_ratio": None,
        "queued_scale": None, "queued_floor_ratio": None,
    }
    small = ""
    if not sizes:
        return summary
    small, large = str(sizes[0]), str(sizes[-1])
    fire_small = _median(target["sizes"].get(small))
    fire_large = _median(target["sizes"].get(large))
    if fire_small and fire_large and len(sizes) > 1:
        summary["scale"] = fire_large / fire_small
    naive_small = _median(target["naive"].get(small))
    naive_large = _median(target["naive"].get(large))
    if naive_small and naive_large and len(sizes) > 1:
        summary["naive_scale"] = naive_large / naive_small
    queued_small = _median(target["sizes"].get(small), "queued_fire")
    queued_large = _median(target["sizes"].get(large), "queued_fire")
    if queued_small and queued_large and len(sizes) > 1:
        summary["queued_scale"] = queued_large / queued_small
    floor = _median(target.get("floor"))
    if fire_small and floor:
        summary["floor_ratio"] = fire_small / floor
    if queued_small and floor:
        summary["queued_floor_ratio"] = queued_small / floor
    lock = target.get("lock_cycle")
    cycles = target["sizes"][small].get("lock_cycles_per_fire") if small in target["sizes"] else None
    shared = (target.get("throughput") or {}).get("shared") or {}
    if lock and cycles and lock["median_ms"] > 0:  # no lease per fire (optimistic): no such bound
        # A fire holds the lock `cycles` times; the lock alone allows at most this many fires/s.
        summary["lock_bound_fires_per_s"] = 1000 / (cycles * lock["median_ms"])
        if shared:
            summary["shared_vs_lock_bound"] = max(shared.values()) / summary["lock_bound_fires_per_s"]
    trips = [
        (target["sizes"][str(size)]["round_trips_per_fire"],
         target["sizes"][str(size)].get("round_trips_per_queued_fire"))
        for size in sizes if str(size) in target["sizes"]
    ]
    summary["round_trips_constant"] = len(set(trips)) == 1
    summary["sizes"] = [sizes[0], sizes[-1]]
    return summary


def _ms(sample: dict[str, Any] | None) -> str:
    if not sample:
        return "-"
    return f"{sample['median_ms']:.2f} ±{sample['spread_pct']:.0f}%"


def _ratio(value: float | None, target: float | None = None) -> str:
    if value is None:
        return "-"
    verdict = "" if target is None else (" ok" if value <= target else " MISS")
    return f"{value:.2f}x{verdict}"


def _number(value: Any, digits: int = 1) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def table(run: dict[str, Any], *, markdown: bool = False) -> str:
    """One table, a column per target and a row per figure (plain text, or Markdown)."""
    targets: dict[str, dict[str, Any]] = run["targets"]
    sizes: list[int] = run["plan"]["sizes"]
    workers: list[int] = run["plan"]["workers"]
    rows: list[list[str]] = [["figure", *targets]]

    def row(label: str, cell: Any) -> None:
        rows.append([label, *(cell(figures) for figures in targets.values())])

    for size in sizes:
        row(f"fire ms @{size:,}", lambda t, s=size: _ms((t["sizes"].get(str(s)) or {}).get("fire")))
    row(f"fire @{sizes[-1]:,} / @{sizes[0]:,}", lambda t: _ratio(t["summary"]["scale"], SCALE_TARGET))
    for size in sizes:
        row(f"queued fire ms @{size:,}",
            lambda t, s=size: _ms((t["sizes"].get(str(s)) or {}).get("queued_fire")))
    row(f"queued fire @{sizes[-1]:,} / @{sizes[0]:,}",
        lambda t: _ratio(t["summary"].get("queued_scale"), SCALE_TARGET))
    row("floor ms (1 read + 1 cond. write)", lambda t: _ms((t.get("floor") or {}).get("fire")))
    row(f"queued fire @{sizes[0]:,} / floor",
        lambda t: _ratio(t["summary"].get("queued_floor_ratio"), FLOOR_TARGET))
    row(f"fire @{sizes[0]:,} / floor (runs the task too)", lambda t: _ratio(t["summary"]["floor_ratio"]))
    row("lock cycle ms (empty acquire_lock)", lambda t: _ms(t.get("lock_cycle")))
    for size in (sizes[0], sizes[-1]):
        row(
            f"round trips / fire @{size:,}",
            lambda t, s=size: _number((t["sizes"].get(str(s)) or {}).get("round_trips_per_fire")),
        )
    for size in (sizes[0], sizes[-1]):
        row(
            f"round trips / queued fire @{size:,}",
            lambda t, s=size: _number((t["sizes"].get(str(s)) or {}).get("round_trips_per_queued_fire")),
        )
    row("floor round trips", lambda t: _number((t.get("floor") or {}).get("round_trips_per_fire")))
    row("saves / fire", lambda t: _number((t["sizes"].get(str(sizes[0])) or {}).get("saves_per_fire")))
    row("saves / queued fire",
        lambda t: _number((t["sizes"].get(str(sizes[0])) or {}).get("saves_per_queued_fire")))
    row("lock cycles / fire", lambda t: _number((t["sizes"].get(str(sizes[0])) or {}).get("lock_cycles_per_fire")))
    row("lock cycles / queued fire",
        lambda t: _number((t["sizes"].get(str(sizes[0])) or {}).get("lock_cycles_per_queued_fire")))
    for size in (sizes[0], sizes[-1]):
        row(
            f"bytes written / fire @{size:,}",
            lambda t, s=size: _number((t["sizes"].get(str(s)) or {}).get("bytes_written_per_fire"), 0),
        )
    for size in (sizes[0], sizes[-1]):
        row(f"load session ms @{size:,}", lambda t, s=size: _ms((t["sizes"].get(str(s)) or {}).get("load")))
    for size in (sizes[0], sizes[-1]):
        row(f"naive fire ms @{size:,}", lambda t, s=size: _ms((t["naive"].get(str(s)) or {}).get("fire")))
    row(f"naive fire @{sizes[-1]:,} / @{sizes[0]:,}", lambda t: _ratio(t["summary"]["naive_scale"]))
    row(
        f"naive bytes written / fire @{sizes[-1]:,}",
        lambda t: _number((t["naive"].get(str(sizes[-1])) or {}).get("bytes_written_per_fire"), 0),
    )
    for kind in ("distinct", "shared"):
        for count in workers:
            row(
                f"fires/s, {count} proc, {kind} session{'s' if kind == 'distinct' else ''}",
                lambda t, k=kind, c=count: _number((t.get("throughput") or {}).get(k, {}).get(str(c))),
            )
    row("lock-bound fires/s (1 / lock cycles x lock ms)",
        lambda t: _number(t["summary"].get("lock_bound_fires_per_s")))
    row("best shared fires/s / lock bound", lambda t: _ratio(t["summary"].get("shared_vs_lock_bound")))
    widths = [max(len(line[column]) for line in rows) for column in range(len(rows[0]))]
    notes = [f"{name}: {error}" for name, figures in targets.items() for error in figures.get("errors", [])]
    notes += [f"skipped {name}: {reason}" for name, reason in run.get("skipped", {}).items()]
    if markdown:
        lines = ["| " + " | ".join(line) + " |" for line in rows]
        lines.insert(1, "|" + "|".join(" --- " for _ in widths) + "|")
        return "\n".join(lines + ([""] + [f"- {note}" for note in notes] if notes else []))
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in rows]
    lines.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(lines + notes)


def write_json(run: dict[str, Any], path: Path) -> None:
    path.write_text(json.dumps(run, indent=2) + "\n")


def write_chart(run: dict[str, Any], path: Path) -> None:
    """Fire latency, load latency (vs session size) and throughput (vs workers), per target."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, (fires, loads, throughput) = plt.subplots(1, 3, figsize=(18, 5.5))
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for index, (name, target) in enumerate(run["targets"].items()):
        color = colors[index % len(colors)]
        for kind, style, label in (("sizes", "-o", name), ("naive", ":x", f"{name} naive")):
            points = sorted((int(size), figures) for size, figures in target[kind].items())
            if points:
                fires.plot([s for s, _ in points], [f["fire"]["median_ms"] for _, f in points],
                           style, color=color, label=label)
            queued = [(s, f["queued_fire"]) for s, f in points if f.get("queued_fire")]
            if kind == "sizes" and queued:
                fires.plot([s for s, _ in queued], [q["median_ms"] for _, q in queued],
                           "-.^", color=color, label=f"{name} queued")
                loads.plot([s for s, _ in points], [f["load"]["median_ms"] for _, f in points],
                           style, color=color, label=label)
        floor = (target.get("floor") or {}).get("fire")
        if floor:
            fires.axhline(floor["median_ms"], color=color, linestyle="--", linewidth=0.8)
        for kind, style in (("distinct", "-o"), ("shared", "--s")):
            points_t = sorted((int(w), v) for w, v in (target.get("throughput") or {}).get(kind, {}).items())
            if points_t:
                throughput.plot([w for w, _ in points_t], [v for _, v in points_t], style,
                                color=color, label=f"{name} {kind}")
    fires.set(xscale="log", yscale="log", xlabel="instances in the session", ylabel="ms (median)",
              title="fire latency (dash-dot: queued fire; dashed: raw-driver floor)")
    loads.set(xscale="log", yscale="log", xlabel="instances in the session", ylabel="ms (median)",
              title="whole-session load latency")
    throughput.set_xscale("log", base=2)
    throughput.set(yscale="log", xlabel="worker processes", ylabel="fires / s",
                   title="throughput (solid: distinct sessions, dashed: one shared)")
    throughput.set_xticks(run["plan"]["workers"], [str(w) for w in run["plan"]["workers"]])
    throughput.minorticks_off()
    for axes in (fires, loads, throughput):
        axes.grid(True, which="both", alpha=0.3)
        axes.legend(fontsize=7)
    figure.suptitle(f"Triggers storage benchmarks, {run['date']} ({'quick' if run['quick'] else 'full'} run)")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def combine(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Several runs' targets in one run (same plan), e.g. for a table across runs."""
    combined = dict(runs[0])
    combined["targets"], combined["skipped"] = {}, {}
    for run in runs:
        if run["plan"]["sizes"] != combined["plan"]["sizes"]:
            raise ValueError(f"run of {run['date']} measured other sizes: {run['plan']['sizes']}")
        for name, target in run["targets"].items():
            combined["targets"][name] = {**target, "summary": summarise(target, run["plan"]["sizes"])}
    measured = set(combined["targets"])
    for run in runs:
        for name, reason in run.get("skipped", {}).items():
            if name not in measured:
                combined["skipped"][name] = reason
    return combined


if __name__ == "__main__":
    # python -m benchmarks.report RUN.json [RUN.json ...]: one Markdown table of them all.
    import sys

    print(table(combine([json.loads(Path(name).read_text()) for name in sys.argv[1:]]), markdown=True))
