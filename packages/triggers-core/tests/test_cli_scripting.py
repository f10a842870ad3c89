"""The ``triggers`` command as scripts use it: ``--json`` everywhere, exit statuses,
bundles of sessions, filters for large sessions.

Mostly in-process (``run_in_process``): the subprocess path of each command is
covered by test_cli_commands.py; one subprocess case per new behaviour here.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_fixtures import Store, make_sample_session, run_cli, run_in_process, sqlite_store

from triggers.cli.main import build_parser
from triggers.types import InstanceStatus


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return sqlite_store(tmp_path / "sessions.db")


@pytest.fixture
def session(store: Store, uid: str) -> str:
    make_sample_session(store, uid)
    return uid


def test_every_command_but_conformance_accepts_json() -> None:
    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    assert subcommands is not None
    lacking = [name for name, sub in subcommands.items()
               if name != "conformance" and not any("--json" in a.option_strings for a in sub._actions)]
    assert lacking == []


def test_a_fire_whose_task_fails_exits_1_and_names_it(store: Store, uid: str) -> None:
    with store.open(uid) as storage:
        from triggers.manager import TriggerManager

        TriggerManager(storage).update_configuration(
            {"t_import": {"after": ["start"], "run": "test_cli_fixtures.explode"}})
    result = run_cli(*store.flags, "fire", uid, "start", "--kwargs", '{"page": 3}')
    assert result.returncode == 1
    assert "scheduled: t_import#0 (now failed)" in result.stdout
    assert "task instance t_import#0 failed: boom on page 3" in result.stderr
    with store.open(uid) as storage:
        assert storage["t_import#0"].status is InstanceStatus.FAILED


def test_an_earlier_failure_does_not_fail_a_later_fire(store: Store, session: str) -> None:
    # t_import#0 failed when the session was made; this fire runs nothing that fails.
    result = run_in_process(*store.flags, "fire", session, "finish", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"uid": session, "trigger": "finish", "scheduled": [],
                                         "failed": []}


def test_fire_json_lists_what_ran_and_what_failed(store: Store, session: str) -> None:
    result = run_in_process(*store.flags, "replay", session, "t_import#0", "--json")
    assert result.returncode == 1
    report = json.loads(result.stdout)
    assert report["replayed"] == "t_import#0"
    assert report["scheduled"] == [{"instance": "t_import#1", "status": "failed"}]
    assert report["failed"] == [{"instance": "t_import#1", "message": "boom on page 1"}]


def test_skip_and_resolve_logs_json(store: Store, session: str) -> None:
    skipped = run_in_process(*store.flags, "skip", session, "t_import#0", "--cascade", "--json")
    assert skipped.returncode == 0, skipped.stderr
    report = json.loads(skipped.stdout)
    assert report["skipped"] == "t_import#0" and report["cascade"] is True
    resolved = run_in_process(*store.flags, "resolve-logs", session, "t_warn#0", "--json")
    assert json.loads(resolved.stdout)["logsResolved"] == "t_warn#0"


def test_inspect_filters_by_status_and_limits_to_the_newest(store: Store, session: str) -> None:
    with store.open(session) as storage:
        from triggers.manager import TriggerManager

        manager = TriggerManager(storage)
        manager.fire("finish")
        for page in range(4):
            manager.fire("page", {"n": page})  # t_later#0..3, each finished in turn
    failed = json.loads(run_in_process(*store.flags, "inspect", session, "--json",
                                       "--status", "failed").stdout)
    assert list(failed["instances"]) == ["t_import#0"]
    assert failed["instancesTotal"] == 6

    newest = json.loads(run_in_process(*store.flags, "inspect", session, "--json",
                                       "--limit", "2").stdout)
    assert list(newest["instances"]) == ["t_later#2", "t_later#3"]

    both = json.loads(run_in_process(*store.flags, "inspect", session, "--json", "--status",
                                     "finished", "--status", "failed", "--limit", "1").stdout)
    assert list(both["instances"]) == ["t_later#3"]

    table = run_in_process(*store.flags, "inspect", session, "--limit", "2")
    assert table.returncode == 0, table.stderr
    assert "2 of 6 instances shown" in table.stdout
    assert "t_import#0" in table.stdout  # still named among the unresolved
    assert "t_later#0" not in table.stdout


def test_inspect_refuses_a_bad_limit(store: Store, session: str) -> None:
    result = run_in_process(*store.flags, "inspect", session, "--limit", "0")
    assert result.returncode == 2 and "--limit must be at least 1" in result.stderr


def test_export_several_sessions_as_a_bundle_and_import_it_elsewhere(tmp_path: Path, uid: str) -> None:
    source, destination = sqlite_store(tmp_path / "a.db"), sqlite_store(tmp_path / "b.db")
    make_sample_session(source, f"{uid}-1")
    make_sample_session(source, f"{uid}-2")
    bundle = tmp_path / "bundle.json"
    exported = run_cli(*source.flags, "export", f"{uid}-1", f"{uid}-2", "-o", str(bundle))
    assert exported.returncode == 0, exported.stderr
    data = json.loads(bundle.read_text())
    assert data["format"] == "triggers-sessions"
    assert [session["uid"] for session in data["sessions"]] == [f"{uid}-1", f"{uid}-2"]

    imported = run_in_process(*destination.flags, "import", str(bundle), "--json")
    assert imported.returncode == 0, imported.stderr
    assert [(s["uid"], s["outcome"]) for s in json.loads(imported.stdout)["sessions"]] == [
        (f"{uid}-1", "imported"), (f"{uid}-2", "imported")]
    for name in (f"{uid}-1", f"{uid}-2"):
        with source.open(name) as original, destination.open(name) as copy:
            assert copy.debug_repr() == original.debug_repr()

    again = run_in_process(*destination.flags, "import", str(bundle))
    assert again.stdout.count("already identical") == 2
    renamed = run_in_process(*destination.flags, "import", str(bundle), "--uid", "x")
    assert renamed.returncode == 2 and "holds 2" in renamed.stderr


def test_a_bundle_naming_a_session_twice_is_refused(tmp_path: Path, store: Store, session: str) -> None:
    one = json.loads(run_in_process(*store.flags, "export", session).stdout)
    bundle = tmp_path / "twice.json"
    bundle.write_text(json.dumps({"format": "triggers-sessions", "version": 1, "sessions": [one, one]}))
    result = run_in_process(*store.flags, "import", str(bundle))
    assert result.returncode == 1 and "more than once" in result.stderr


def test_migrate_into_a_process_local_store_is_refused(tmp_path: Path, session: str, store: Store) -> None:
    result = run_in_process("migrate", "--from", "sql", "--from-option", f"url={store.options['url']}",
                            "--to", "memory", session)
    assert result.returncode == 2
    assert "only inside the process" in result.stderr


def test_migrate_into_an_in_memory_sqlite_database_is_refused(session: str, store: Store) -> None:
    # The sql backend shares state, but not this configuration of it.
    result = run_in_process("migrate", "--from", "sql", "--from-option", f"url={store.options['url']}",
                            "--to", "sql", "--to-option", "url=sqlite://", session)
    assert result.returncode == 2, result.stderr
    assert "sql (url=\"sqlite://\") keeps sessions only inside the process" in result.stderr


def test_migrate_and_schema_json(tmp_path: Path, store: Store, session: str) -> None:
    destination = sqlite_store(tmp_path / "copy.db")
    result = run_in_process("migrate", "--from", "sql", "--from-option", f"url={store.options['url']}",
                            "--to", "sql", "--to-option", f"url={destination.options['url']}",
                            session, "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"sessions": 1, "copied": [session], "identical": [],
                                         "failed": []}
    schema = run_in_process(*destination.flags, "schema", "check", "--json")
    assert schema.returncode == 0, schema.stderr
    report = json.loads(schema.stdout)
    assert report["backend"] == "sql" and report["hasSchema"] is True and report["objects"]
    memory = json.loads(run_in_process("--backend", "memory", "schema", "create", "--json").stdout)
    assert memory == {"backend": "memory", "action": "create", "objects": [], "hasSchema": False}


@pytest.mark.parametrize("command", [["inspect", "s"], ["export", "s"]])
def test_reading_commands_never_create_tables(tmp_path: Path, command: list[str]) -> None:
    import sqlite3

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()  # a database without the triggers tables
    store = sqlite_store(empty)
    result = run_in_process(*store.flags, *command)
    assert result.returncode == 1
    assert "triggers schema create" in result.stderr, result.stderr
    with sqlite3.connect(empty) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []


def test_migrating_from_a_store_without_tables_creates_none(tmp_path: Path) -> None:
    import sqlite3

    empty = tmp_path / "empty.db"
    sqlite3.connect(empty).close()
    destination = sqlite_store(tmp_path / "copy.db")
    result = run_in_process("migrate", "--from", "sql", "--from-option", f"url=sqlite:///{empty}",
                            "--to", "sql", "--to-option", f"url={destination.options['url']}", "x")
    assert result.returncode == 1, result.stdout
    with sqlite3.connect(empty) as connection:
        assert connection.execute("SELECT name FROM sqlite_master").fetchall() == []
