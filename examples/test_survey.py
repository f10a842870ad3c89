"""The README's first command: the survey workflow runs end to end.

Run as a subprocess, exactly as `./run demo` runs it, so the test proves what
a user sees (exit status, summary, one-line errors).
"""

from __future__ import annotations

import importlib.util
import re
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

SURVEY = Path(__file__).with_name("survey.py")


@pytest.fixture(autouse=True)
def in_tmp_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The demo's default SQLite file goes in the working directory: keep it out of the repo."""
    monkeypatch.chdir(tmp_path)


def run_survey(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SURVEY), *args], capture_output=True, text=True, timeout=120, check=False
    )


def squeeze(text: str) -> list[str]:
    return [" ".join(line.split()) for line in text.splitlines()]


def test_workflow_runs_and_prints_the_summary() -> None:
    result = run_survey()
    assert result.returncode == 0, result.stderr
    lines = squeeze(result.stdout)
    assert re.match(r"session survey-[0-9a-f]{12} \(new\) on backend 'sql' \(triggers-sql ", lines[0])
    assert Path("triggers-demo.db").is_file()
    for row in (
        "t_importResponses#1 replayed 0 - ERROR yes",
        "t_importResponses#3 finished 1 t_importResponses#1 INFO yes",
        # A warning is recorded but needs no resolution (Triggers 2.0's threshold is ERROR).
        "t_importResponses#2 finished 0 - WARNING yes",
        "t_computeScore#0 finished 0 - INFO yes",
        "Unresolved tasks: none",
        "Unresolved instances: none",
        "Instances with unresolved logs: none",
    ):
        assert row in lines, row
    assert any(line.startswith("Score: S-1042 scored 75.0/100") for line in lines)
    assert "log WARNING t_importResponses#2: page 3: question q6" in result.stderr


def test_threading_runner_gives_the_same_session() -> None:
    eager = squeeze(run_survey().stdout)
    threaded = run_survey("--runner", "threading", "--backend", "memory", "--option", f"namespace={uuid.uuid4().hex}")
    assert threaded.returncode == 0, threaded.stderr
    lines = squeeze(threaded.stdout)
    assert lines[lines.index("Instances"):] == eager[eager.index("Instances"):]


def test_unknown_backend_is_one_clear_line() -> None:
    result = run_survey("--backend", "nope")
    assert result.returncode == 1
    assert result.stdout == ""
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("survey: error: no storage backend named 'nope' is installed")
    assert "memory" in line


def test_unknown_option_is_one_clear_line() -> None:
    result = run_survey("--option", "nope=1")
    assert result.returncode == 1
    (line,) = result.stderr.strip().splitlines()
    assert "nope" in line and "Traceback" not in result.stderr


def test_help_explains_continuing_a_session() -> None:
    result = run_survey("--help")
    assert result.returncode == 0
    for option in ("--session", "--backend", "--option", "--runner", "--until"):
        assert option in result.stdout


def test_a_named_session_continues_across_runs_in_the_default_sqlite_file() -> None:
    session = ["--session", "s-42"]
    first = run_survey(*session, "--until", "questionnaire")
    assert first.returncode == 0, first.stderr
    assert "session s-42 (new)" in first.stdout
    assert "Unresolved instances: 2" in first.stdout
    second = run_survey(*session)
    assert second.returncode == 0, second.stderr
    assert "session s-42 (continuing:" in second.stdout
    assert second.stdout.count("already applied to this session, skipped") == 4
    assert "Score: S-1042 scored 75.0/100" in second.stdout


def test_a_named_session_continues_where_it_stopped(capsys: pytest.CaptureFixture[str]) -> None:
    """The memory store lives as long as the process, so continue within one."""
    spec = importlib.util.spec_from_file_location("survey", SURVEY)
    assert spec is not None and spec.loader is not None
    survey = importlib.util.module_from_spec(spec)
    sys.modules["survey"] = survey  # its dataclasses look their module up by name
    spec.loader.exec_module(survey)
    session = ["--session", f"continued-{uuid.uuid4().hex}", "--backend", "memory",
               "--option", f"namespace={uuid.uuid4().hex}"]

    assert survey.main([*session, "--until", "questionnaire"]) == 0
    first = squeeze(capsys.readouterr().out)
    assert "Unresolved instances: 2" in first
    assert any(line.startswith("Score: not computed yet") for line in first)

    assert survey.main(session) == 0
    second = capsys.readouterr().out
    assert second.count("already applied to this session, skipped") == 4
    assert "Score: S-1042 scored 75.0/100" in second

    assert survey.main(session) == 0
    third = capsys.readouterr().out
    assert third.count("already applied to this session, skipped") == 6
    assert "7 instances" in third
