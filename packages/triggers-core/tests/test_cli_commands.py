"""The ``triggers`` command end to end: each command in a subprocess, on SQLite.

Every session is made and checked through the library in this process, and
changed only by the command, so each test sees what an operator would.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from test_cli_fixtures import (
    Store,
    make_sample_session,
    run_cli,
    run_in_process,
    sqlite_store,
    unreachable_store,
)

import triggers
from triggers.cli.selection import hide_passwords, parse_option
from triggers.types import InstanceStatus


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return sqlite_store(tmp_path / "sessions.db")


@pytest.fixture
def session(store: Store, uid: str) -> str:
    make_sample_session(store, uid)
    return uid


def assert_one_line_error(result: object, *needles: str) -> str:
    """Exit status 1, and stderr is one ``triggers: error: ...`` line naming the needles."""
    assert result.returncode == 1, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    stderr: str = result.stderr  # type: ignore[attr-defined]
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("triggers: error: "), stderr
    assert "Traceback" not in stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


# --- arguments ------------------------------------------------------------------------


def test_help_lists_every_command() -> None:
    result = run_cli("--help")
    assert result.returncode == 0
    for command in ("backends", "inspect", "fire", "replay", "skip", "resolve-logs", "set-status", "resume", "list", "export",
                    "import", "migrate", "conformance", "schema", "TRIGGERS_STORAGE_BACKEND"):
        assert command in result.stdout


def test_the_installed_script_is_the_same_command() -> None:
    script = Path(sys.executable).with_name("triggers")
    if not script.exists():
        pytest.skip(f"no {script}: triggers-core is not installed with its scripts here")
    result = subprocess.run([str(script), "--version"], capture_output=True, text=True, check=False)
    assert result.returncode == 0
    assert result.stdout.strip() == f"triggers {triggers.__version__}"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        ([], "COMMAND"),
        (["inspect"], "UID"),
        (["frobnicate"], "invalid choice"),
        (["fire", "s", "start", "--kwargs", "{not json"], "--kwargs is not valid JSON"),
        (["fire", "s", "start", "--kwargs", "[1, 2]"], "--kwargs must be a JSON object"),
        (["--option", "novalue", "inspect", "s"], "--option expects key=value"),
        (["skip", "s", "t#0", "--result", "{}"], "--result is only used with --cascade"),
        (["migrate", "--from", "sql", "--to", "memory"], "name the sessions to copy"),
        (["--backend", "sql", "migrate", "--from", "sql", "--to", "memory", "u"], "--from/--from-option"),
        (["schema", "drop"], "invalid choice"),
    ],
)
def test_bad_arguments_print_the_usage_and_exit_2(args: list[str], complaint: str) -> None:
    result = run_cli(*args) if not args else run_in_process(*args)
    assert result.returncode == 2, result.stderr
    assert complaint in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("lease_ttl=5", ("lease_ttl", 5)),
        ("create_tables=false", ("create_tables", False)),
        ("url=sqlite:///x.db", ("url", "sqlite:///x.db")),
        ('name="42"', ("name", "42")),
        ("query=a=b", ("query", "a=b")),
        ("empty=", ("empty", "")),
    ],
)
def test_option_values_are_json_when_they_parse(text: str, parsed: tuple[str, object]) -> None:
    assert parse_option(text) == parsed


def test_passwords_in_urls_are_never_printed() -> None:
    shown = hide_passwords('url="postgresql+psycopg://app:s3cr:et@db:5432/x" other=1')
    assert shown == 'url="postgresql+psycopg://app:***@db:5432/x" other=1'
    assert hide_passwords("sqlite:///x.db") == "sqlite:///x.db"


def test_an_unknown_backend_is_one_line_listing_the_installed_ones() -> None:
    result = run_cli("--backend", "nosuch", "inspect", "s")
    assert_one_line_error(result, "'nosuch'", "memory", "sql")


def test_no_backend_selected_says_how_to_select_one() -> None:
    assert_one_line_error(run_cli("inspect", "s"), "TRIGGERS_STORAGE_BACKEND", "--backend")


def test_an_unknown_option_is_refused_by_name(store: Store) -> None:
    result = run_in_process(*store.flags, "--option", "colour=blue", "inspect", "s")
    assert_one_line_error(result, "colour")


@pytest.mark.parametrize("command", [["inspect", "s"], ["schema", "check"]])
def test_an_unreachable_server_is_one_line(command: list[str]) -> None:
    assert_one_line_error(run_cli(*unreachable_store().flags, *command), "Connection refused")


@pytest.mark.parametrize("command", [["export", "s"], ["fire", "s", "start"]])
def test_every_command_reports_an_unreachable_server(command: list[str]) -> None:
    result = run_in_process(*unreachable_store().flags, *command)
    assert result.returncode == 1
    assert "Connection refused" in result.stdout + result.stderr


def test_debug_shows_the_traceback_too() -> None:
    result = run_cli("--debug", *unreachable_store().flags, "inspect", "s")
    assert result.returncode == 1
    assert "Traceback" in result.stderr
    assert "triggers: error: " in result.stderr


def test_the_environment_selects_the_backend(store: Store, session: str) -> None:
    env = {"TRIGGERS_STORAGE_BACKEND": "sql",
           "TRIGGERS_STORAGE_OPTIONS": json.dumps(dict(store.options))}
    result = run_cli("inspect", session, "--json", env=env)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["uid"] == session
    bad = run_cli("inspect", session, env={**env, "TRIGGERS_STORAGE_OPTIONS": "{oops"})
    assert_one_line_error(bad, "TRIGGERS_STORAGE_OPTIONS is not valid JSON")


def test_selection_flags_may_follow_the_command(store: Store, session: str) -> None:
    result = run_in_process("inspect", session, "--json", *store.flags)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["uid"] == session


# --- backends --------------------------------------------------------------------------


def test_backends_lists_installed_backends_and_probes_the_selected_one(store: Store) -> None:
    result = run_cli(*store.flags, "backends", "--json")
    assert result.returncode == 0, result.stderr
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert {"memory", "sql"} <= set(rows)
    assert rows["sql"]["backendClass"] == "triggers_sql.backend.SQLStorageBackend"
    assert rows["sql"]["distribution"] == "triggers-sql"
    assert rows["sql"]["version"]
    assert "fenced_saves" in rows["sql"]["capabilities"]
    assert rows["sql"]["server"].startswith("answers")
    assert rows["memory"]["server"] == "not probed"
    assert rows["memory"]["distribution"] == "triggers-core"

    table = run_cli("backends")
    assert table.returncode == 0
    assert "triggers-sql" in table.stdout and "not probed" in table.stdout


def test_backends_reports_a_server_that_does_not_answer() -> None:
    result = run_cli(*unreachable_store().flags, "backends", "--json", "--timeout", "10")
    assert result.returncode == 1
    rows = {row["name"]: row for row in json.loads(result.stdout)}
    assert rows["sql"]["server"].startswith("does not answer")
    assert "Connection refused" in rows["sql"]["server"]


# --- inspect ---------------------------------------------------------------------------


def test_inspect_shows_tasks_instances_and_the_failure(store: Store, session: str) -> None:
    result = run_cli(*store.flags, "inspect", session)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    for text in ("Triggers fired: start {", "t_import#0", "t_warn#0", "failed", "finished", "ERROR", "WARNING",
                 "Unresolved tasks: t_import, t_later, t_report",
                 "Unresolved instances: t_import#0",
                 "Unresolved logs: t_import#0",
                 "builtins.RuntimeError: boom on page 1", "Traceback (most recent call last)"):
        assert text in out, text


def test_inspect_json_is_the_stored_session_plus_what_is_unresolved(store: Store, session: str) -> None:
    result = run_cli(*store.flags, "inspect", session, "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    with store.open(session) as storage:
        expected = storage.debug_repr()
    assert report["tasks"] == expected["tasks"]
    assert report["instances"] == expected["instances"]
    assert report["metadata"] == expected["metadata"]
    assert report["unresolvedTasks"] == ["t_import", "t_later", "t_report"]
    assert report["unresolvedInstances"] == ["t_import#0"]
    assert report["unresolvedLogs"] == ["t_import#0"]  # a warning alone needs no resolution
    assert report["failedInstances"] == ["t_import#0"]
    assert report["backend"] == "sql"


def test_inspect_of_a_missing_session_is_an_error(store: Store, session: str) -> None:
    assert_one_line_error(run_in_process(*store.flags, "inspect", "no-such-session"), "'no-such-session'",
                          "does not exist")


# --- the manager's operations ------------------------------------------------------------


def test_fire_runs_what_becomes_ready(store: Store, session: str) -> None:
    result = run_cli(*store.flags, "fire", session, "finish")
    assert result.returncode == 0, result.stderr
    assert "scheduled: nothing" in result.stdout
    result = run_cli(*store.flags, "fire", session, "page", "--kwargs", '{"number": 7}')
    assert result.returncode == 0, result.stderr
    assert "scheduled: t_later#0 (now finished)" in result.stdout
    with store.open(session) as storage:
        later = storage["t_later#0"]
        assert later.status is InstanceStatus.FINISHED
        assert later.kwargs == {"finish": {}, "page": {"number": 7}}


def test_fire_into_a_missing_session_is_refused(store: Store, session: str) -> None:
    assert_one_line_error(run_in_process(*store.flags, "fire", "typo", "start"), "'typo'", "no tasks")
    with store.open("typo") as storage:
        assert not storage.metadata


def test_replay_with_replacement_kwargs_then_skip_with_cascade(store: Store, session: str) -> None:
    result = run_cli(*store.flags, "replay", session, "t_import#0",
                     "--kwargs", '{"start": {"page": 2}}')
    assert result.returncode == 1, "a replay whose task failed again exits 1"
    assert "replayed 't_import#0' as t_import#1 (now failed)" in result.stdout
    assert "task instance t_import#1 failed: boom on page 2" in result.stderr
    with store.open(session) as storage:
        assert storage["t_import#0"].status is InstanceStatus.REPLAYED
        replay = storage["t_import#1"]
        assert replay.status is InstanceStatus.FAILED  # it fails again, on the new page
        assert replay.metadata["error"]["message"] == "boom on page 2"
        assert replay.parent == "t_import#0"

    result = run_cli(*store.flags, "skip", session, "t_import#1", "--cascade",
                     "--result", '{"pages": 0}')
    assert result.returncode == 0, result.stderr
    with store.open(session) as storage:
        assert storage["t_import#1"].status is InstanceStatus.SKIPPED
        report = storage["t_report#0"]
        assert report.status is InstanceStatus.FINISHED
        assert report.kwargs == {"t_import": {"pages": 0}}


def test_skip_without_cascade_fires_nothing(store: Store, session: str) -> None:
    result = run_in_process(*store.flags, "skip", session, "t_import#0")
    assert result.returncode == 0, result.stderr
    with store.open(session) as storage:
        assert storage["t_import#0"].status is InstanceStatus.SKIPPED
        assert "t_report#0" not in storage


def test_replaying_an_instance_that_did_not_fail_is_refused(store: Store, session: str) -> None:
    assert_one_line_error(run_in_process(*store.flags, "replay", session, "t_warn#0"),
                          "'t_warn#0' is finished", "only failed instances")
    assert_one_line_error(run_in_process(*store.flags, "skip", session, "t_nothing#3"), "t_nothing#3")


def test_a_locked_session_is_waited_for_then_refused(store: Store, session: str) -> None:
    with store.open(session) as holder, holder.acquire_lock():
        result = run_in_process(*store.flags, "--option", "lock_timeout=0.2", "fire", session, "finish")
    assert_one_line_error(result, "locked by another holder")
    with store.open(session) as storage:
        assert "finish" not in storage.metadata["triggerKwargs"]


def test_resolve_logs(store: Store, session: str) -> None:
    result = run_cli(*store.flags, "resolve-logs", session, "t_warn#0")
    assert result.returncode == 0, result.stderr
    with store.open(session) as storage:
        assert [i.name for i in storage.get_instances_with_unresolved_logs()] == ["t_import#0"]


# --- schema ----------------------------------------------------------------------------


def test_schema_check_then_create_then_check(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "empty.db")
    missing = run_in_process(*store.flags, "schema", "check")
    assert_one_line_error(missing, "triggers schema create")
    created = run_cli(*store.flags, "schema", "create")
    assert created.returncode == 0, created.stderr
    assert "schema created or found" in created.stdout
    checked = run_in_process(*store.flags, "schema", "check")
    assert checked.returncode == 0, checked.stderr
    assert "up to date" in checked.stdout


def test_schema_of_a_backend_without_tables_says_so() -> None:
    result = run_cli("--backend", "memory", "schema", "create")
    assert result.returncode == 0
    assert "has no tables or indexes" in result.stdout


# --- conformance -------------------------------------------------------------------------


def test_conformance_runs_the_suite_and_prints_the_capability_report(store: Store) -> None:
    result = run_cli("conformance", "sql", *store.flags[2:], "--", "-q", "-k", "round_trip")
    assert result.returncode == 0, result.stdout[-2000:]
    assert "--triggers-backend sql" in result.stderr
    assert f"--triggers-option 'url=\"{store.options['url']}\"'" in result.stderr
    assert "Triggers conformance: capability report" in result.stdout
    assert "passed       round trip of the value domain" in result.stdout


def test_conformance_of_an_unknown_backend_is_one_line() -> None:
    assert_one_line_error(run_cli("conformance", "nosuch"), "'nosuch'", "installed")


def test_conformance_says_when_the_suite_is_not_installed(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from triggers.cli import conformance, main

    real_find_spec = conformance.importlib.util.find_spec
    monkeypatch.setattr(
        conformance.importlib.util,
        "find_spec",
        lambda name, *args: None if name == "triggers_conformance" else real_find_spec(name, *args),
    )
    assert main(["conformance", "memory"]) == 1
    assert capsys.readouterr().err.strip() == (
        "triggers: error: the conformance suite is not installed: pip install triggers-conformance"
    )
