"""How much work a scenario does: small fixed counts by default, a time budget with ``--soak``.

The default (short) run must stay cheap enough for the project's test command,
so every scenario uses small fixed counts. ``--soak SECONDS`` gives the run a
wall-clock budget instead: it is shared evenly by the selected reliability
tests, and each repeating scenario (crashes, hypothesis examples, restarts)
repeats until its share is spent, never fewer times than the short run.
Fixed-size scenarios (the load runs) use their soak sizes once.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

__all__ = ["Scale"]


@dataclass
class Scale:
    """The size of one test's run.

    ``seconds`` is this test's share of the soak budget (``None`` in a short
    run). The clock starts when the test asks for its scale.
    """

    seconds: float | None = None
    started: float = field(default_factory=time.monotonic)

    @property
    def soak(self) -> bool:
        return self.seconds is not None

    def pick(self, short: int, soak: int) -> int:
        """A fixed count: ``short`` normally, ``soak`` in a soak run."""
        return soak if self.soak else short

    def remaining(self) -> float:
        """Seconds left of this test's share (infinite in a short run)."""
        if self.seconds is None:
            return float("inf")
        return self.seconds - (time.monotonic() - self.started)

    def again(self, done: int, short: int) -> bool:
        """Whether a repeating scenario runs once more after ``done`` rounds.

        Short run: exactly ``short`` rounds. Soak run: at least ``short``,
        then as many as fit in the time share.
        """
        if done < short:
            return True
        return self.soak and self.remaining() > 0
