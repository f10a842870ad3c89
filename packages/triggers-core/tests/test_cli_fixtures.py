"""Shared pieces of the ``triggers`` command tests: running it, tasks, a sample session.

The command runs in a subprocess (``python -m triggers``), exactly as an
operator runs it; this directory is on its ``PYTHONPATH`` so the tasks below
(``run: test_cli_fixtures.NAME``) import there too. No tests live here.
"""

from __future__ import annotations

import contextlib
import io
import os
import subprocess
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from triggers.manager import TriggerManager
from triggers.registry import storage_from_config
from triggers.storage import TriggerStorageBackend
from triggers.tasks import TaskContext

TESTS_DIR = Path(__file__).resolve().parent


def explode(context: TaskContext) -> None:
    """Log an error, then fail with an exception naming the page."""
    page = context.trigger_kwargs.get("start", {}).get("page")
    context.get_logger_context().error("page %s is unreadable", page)
    raise RuntimeError(f"boom on page {page}")


def succeed(context: TaskContext) -> Mapping[str, Any]:
    """Finish with a result for the cascade."""
    return {"done": context.task_instance.name}


def warn(context: TaskContext) -> None:
    """Finish, leaving a warning for an operator to resolve."""
    context.get_logger_context().warning("odd input")


SAMPLE_CONFIGURATION = {
    "t_import": {"after": ["start"], "run": "test_cli_fixtures.explode"},
    "t_report": {"after": ["t_import"], "run": "test_cli_fixtures.succeed"},
    "t_warn": {"after": ["start"], "run": "test_cli_fixtures.warn"},
    "t_later": {"after": ["finish"], "andEvery": "page", "run": "test_cli_fixtures.succeed"},
}
"""After ``start``: t_import fails, t_report waits for it, t_warn finishes with a warning."""

SAMPLE_KWARGS = {"page": 1, "when": datetime(2026, 11, 28, 12, 30, tzinfo=UTC), "$odd": [1.5, None, ""]}


@dataclass(frozen=True)
class Store:
    """A backend selection for the tests: flags for the command, a config for the library."""

    backend: str
    options: Mapping[str, Any]

    @property
    def flags(self) -> list[str]:
        import json

        flags = ["--backend", self.backend]
        for key, value in self.options.items():
            flags += ["--option", f"{key}={value if isinstance(value, str) else json.dumps(value)}"]
        return flags

    def open(self, uid: str) -> TriggerStorageBackend:
        return storage_from_config(uid, {"backend": self.backend, "options": dict(self.options)})


def sqlite_store(path: Path) -> Store:
    """The ``sql`` backend on a SQLite file (the tests that need it skip without triggers-sql)."""
    pytest.importorskip("triggers_sql", reason="triggers-sql is not installed")
    return Store("sql", {"url": f"sqlite:///{path}"})


def unreachable_store() -> Store:
    """``sql`` on a PostgreSQL port where nothing listens: the connection is refused at once."""
    pytest.importorskip("triggers_sql", reason="triggers-sql is not installed")
    return Store("sql", {"url": "postgresql+psycopg://127.0.0.1:1/x"})


def make_sample_session(store: Store, uid: str) -> None:
    """Configure the sample tasks and fire ``start`` (t_import fails, t_warn warns)."""
    with store.open(uid) as storage:
        manager = TriggerManager(storage)
        manager.update_configuration(SAMPLE_CONFIGURATION)
        manager.fire("start", SAMPLE_KWARGS)


def run_cli(*args: str, env: Mapping[str, str] | None = None, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m triggers ARGS`` in a subprocess; never raises on a non-zero exit.

    ``env`` adds variables; its ``PYTHONPATH`` is put in front of this directory.
    """
    environ = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("TRIGGERS_") or key in ("TRIGGERS_TEST_SERVERS",)
    }
    extra = dict(env or {})
    paths = [str(TESTS_DIR), extra.pop("PYTHONPATH", ""), environ.get("PYTHONPATH", "")]
    environ["PYTHONPATH"] = os.pathsep.join(filter(None, paths))
    environ["COLUMNS"] = "200"
    environ.update(extra)
    return subprocess.run(
        [sys.executable, "-m", "triggers", *args],
        capture_output=True,
        text=True,
        env=environ,
        input=stdin,
        timeout=120,
        check=False,
    )


def run_in_process(*args: str) -> subprocess.CompletedProcess[str]:
    """``main(ARGS)`` in this process, output captured: for the variations of a case
    that a subprocess test already covers end to end (a subprocess costs ~1 s)."""
    from triggers.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(list(args))
    return subprocess.CompletedProcess(["triggers", *args], status, out.getvalue(), err.getvalue())
