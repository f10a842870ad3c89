"""The figures each run reports: operations run, faults injected, sessions checked, losses.

Every scenario adds its counts for its target; the suite's ``conftest.py``
prints them as one table at the end of the run (the numbers that go into
``RESULTS.md``). ``lost`` counts committed changes found missing or torn: any
non-zero value is also a test failure, so the table and the verdict agree.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

__all__ = ["FIGURES", "Figures", "Tally"]


@dataclass
class Tally:
    """What one scenario did on one target."""

    operations: int = 0
    faults: int = 0
    sessions: int = 0
    lost: int = 0
    seconds: float = 0.0
    note: str = ""


@dataclass
class Figures:
    """Tallies by (scenario, target), in the order they were first recorded."""

    tallies: dict[tuple[str, str], Tally] = field(default_factory=dict)

    def tally(self, scenario: str, target: str) -> Tally:
        return self.tallies.setdefault((scenario, target), Tally())

    @contextmanager
    def timed(self, scenario: str, target: str) -> Iterator[Tally]:
        """The tally of ``scenario`` on ``target``, adding the time spent in the block."""
        tally = self.tally(scenario, target)
        started = time.monotonic()
        try:
            yield tally
        finally:
            tally.seconds += time.monotonic() - started

    def table(self) -> list[str]:
        """A Markdown table of every tally, with a total row."""
        if not self.tallies:
            return []
        lines = [
            "| scenario | target | operations | faults injected | sessions checked | lost | seconds | note |",
            "| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |",
        ]
        total = Tally()
        for (scenario, target), tally in self.tallies.items():
            lines.append(
                f"| {scenario} | {target} | {tally.operations} | {tally.faults} | "
                f"{tally.sessions} | {tally.lost} | {tally.seconds:.1f} | {tally.note} |"
            )
            total.operations += tally.operations
            total.faults += tally.faults
            total.sessions += tally.sessions
            total.lost += tally.lost
            total.seconds += tally.seconds
        lines.append(
            f"| **total** | | {total.operations} | {total.faults} | {total.sessions} | "
            f"{total.lost} | {total.seconds:.1f} | |"
        )
        return lines


FIGURES = Figures()
"""This run's figures (one process: children report back to the test that started them)."""
