"""Real ``celery worker`` processes for the tests, started and killed by pid."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

TESTS_DIR = Path(__file__).resolve().parent
EXAMPLES_DIR = TESTS_DIR.parents[2] / "examples"


@dataclass
class Worker:
    """One ``celery worker`` process (its own process group, so a kill ends its pool too)."""

    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if " ready." in self.log.read_text(errors="replace"):
                return
            if self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited ({self.process.returncode}):\n{self.tail()}")
            time.sleep(0.1)
        raise RuntimeError(f"worker {self.name} not ready within {timeout:g} s:\n{self.tail()}")

    def tail(self) -> str:
        return self.log.read_text(errors="replace")[-3000:]

    def kill(self) -> None:
        """SIGKILL the worker and its pool: no shutdown, no acknowledgement."""
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self) -> None:
        """End the worker once its test is over: SIGKILL, like :meth:`kill`.

        A warm or even a cold shutdown waits seconds for the broker
        connection to wind down; the test's queues are deleted anyway.
        """
        self.kill()


def start_worker(name: str, directory: Path, env: Mapping[str, str], queues: list[str], *,
                 pool: str = "solo", concurrency: int = 1, app: str = "celery_test_app",
                 workdir: Path | None = None) -> Worker:
    """Start ``celery -A APP worker`` consuming ``queues``.

    With ``workdir``, as the demo's README says: ``celery --workdir DIR -A APP``,
    nothing added to ``PYTHONPATH``.
    """
    log = directory / f"worker-{name}.log"
    paths = [] if workdir else [str(TESTS_DIR), str(EXAMPLES_DIR)]
    path = os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")])
    where = ["--workdir", str(workdir)] if workdir else []
    command = [sys.executable, "-m", "celery", *where, "-A", app, "worker",
               f"--pool={pool}", f"--concurrency={concurrency}", "-Q", ",".join(queues),
               "-n", f"{name}@%h", "--without-gossip", "--without-mingle", "--without-heartbeat",
               "-l", "INFO"]
    with log.open("wb") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT,
                                   stdin=subprocess.DEVNULL, start_new_session=True,
                                   env={**os.environ, **env, "PYTHONPATH": path})
    return Worker(name, process, log)


def read_runs(path: Path) -> list[dict[str, Any]]:
    """The JSON lines the test tasks wrote."""
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
