"""Find or start the real servers that backend tests talk to.

Every backend is tested against a real server speaking the real protocol, and
the test command should work the same on a laptop and in CI. So each
package's ``conftest.py`` describes its server once, as a :class:`Server`, and
gets it from a session-scoped fixture with :func:`serve`:

* a server that already answers is used as it is (PostgreSQL, MariaDB and
  Redis are started by the machine; a developer may run their own);
* otherwise, if the server has a ``command`` and its program is installed, it
  is started in the background, waited for, and stopped (by the PID recorded
  when it was started) at the end of the test session;
* otherwise the server is *missing*: under ``CI=true`` that fails the tests
  that need it, because a green run must mean every backend was tested;
  outside CI they are skipped, with a reason naming the server and how to
  install it.

At the end of the run the plugin prints one line per server: found, started
or missing, so a skipped backend is never silent.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pytest

__all__ = ["REPORT", "Server", "in_ci", "missing", "port_answers", "serve"]


def in_ci() -> bool:
    """True when a missing server must fail the run (``CI=true``)."""
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def port_answers(host: str, port: int, timeout: float = 0.5) -> bool:
    """True when something accepts TCP connections on ``host:port``."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


@dataclass
class Server:
    """How to reach, and if need be start, one server for the tests.

    ``ready`` decides when the server answers (default: its TCP port accepts
    connections); it should be a real protocol round trip where a port can be
    open before the server serves requests. ``command`` starts it in the
    foreground (the process started is the server, so its PID stops it);
    ``None`` means the tests never start it themselves. ``install`` says how
    to get it, for the skip message.
    """

    name: str
    host: str
    port: int
    command: Sequence[str] | None = None
    ready: Callable[[], bool] | None = None
    install: str = ""
    startup_timeout: float = 30.0
    env: dict[str, str] = field(default_factory=dict)

    def answers(self) -> bool:
        if self.ready is not None:
            try:
                return self.ready()
            except Exception:
                return False
        return port_answers(self.host, self.port)

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass
class Report:
    """What happened to each server in this test session, for the summary."""

    lines: dict[str, str] = field(default_factory=dict)

    def record(self, server: Server, outcome: str) -> None:
        self.lines[server.name] = f"{server.name} ({server.address}): {outcome}"


REPORT = Report()


def missing(server: Server, why: str) -> None:
    """Fail (under CI) or skip (elsewhere) the current test: ``server`` is missing."""
    message = f"{server.name} is not available at {server.address}: {why}"
    if server.install:
        message += f" ({server.install})"
    REPORT.record(server, "MISSING - " + why)
    if in_ci():
        pytest.fail(f"CI=true and {message}", pytrace=False)
    pytest.skip(message)


def _wait(server: Server, process: subprocess.Popen[bytes], log: Path) -> str | None:
    """Wait for ``server`` to answer; return why it did not, or None."""
    deadline = time.monotonic() + server.startup_timeout
    while time.monotonic() < deadline:
        if server.answers():
            return None
        if process.poll() is not None:
            tail = log.read_text(errors="replace")[-800:].strip()
            return f"it exited with status {process.returncode}: {tail or 'no output'}"
        time.sleep(0.1)
    return f"it did not answer within {server.startup_timeout:.0f} s (log: {log})"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


@contextmanager
def serve(server: Server) -> Iterator[Server]:
    """Yield ``server`` once it answers, starting (and later stopping) it if needed.

    Use it in a session-scoped fixture. Calls :func:`missing` when the server
    neither answers nor can be started.
    """
    if server.answers():
        REPORT.record(server, "found running")
        yield server
        return
    if server.command is None:
        missing(server, "nothing answers there and the tests do not start it")
    assert server.command is not None
    program = server.command[0]
    if shutil.which(program) is None:
        missing(server, f"nothing answers there and {program!r} is not installed")
    log = Path(tempfile.mkdtemp(prefix=f"triggers-{server.name.lower()}-")) / "server.log"
    owner = os.getpid()
    with log.open("wb") as out:
        process = subprocess.Popen(
            list(server.command),
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            env={**os.environ, **server.env},
        )
    try:
        why = _wait(server, process, log)
        if why is not None:
            _stop(process)
            missing(server, f"started {' '.join(server.command)!r} but {why}")
        REPORT.record(server, f"started by the tests (pid {process.pid}, log {log})")
        yield server
    finally:
        # Forked test children inherit this generator; only its owner stops the server.
        if os.getpid() == owner:
            _stop(process)
