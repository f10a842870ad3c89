"""``triggers resume``, ``list`` and ``set-status``, and runners named in code.

A worker killed mid-task is staged as what it leaves behind: an instance
``running`` on a run lease that ended a minute ago.
"""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import core_lease_tasks
import pytest
from test_cli_fixtures import Store, make_sample_session, run_cli, run_in_process, sqlite_store

from triggers import run_leases
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.types import InstanceStatus


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return sqlite_store(tmp_path / "sessions.db")


def make_stuck_session(store: Store, uid: str) -> None:
    """A session whose t_stuck#0 is running on a run lease that ended a minute ago."""
    with store.open(uid) as storage, storage.acquire_lock():
        storage.update_configuration({
            "t_stuck": {"after": ["start"], "run": "test_cli_fixtures.succeed"},
            "t_next": {"after": ["t_stuck"], "run": "test_cli_fixtures.succeed"},
        })
        instance = storage.create_instance("t_stuck", status="scheduled", kwargs={"start": {}})
        run_leases.start(instance, storage.now() - timedelta(seconds=120), ttl=60)
        instance.status = InstanceStatus.RUNNING
        storage.save()


def test_resume_runs_an_instance_whose_worker_died(store: Store, uid: str) -> None:
    make_stuck_session(store, uid)
    result = run_cli(*store.flags, "resume", uid)
    assert result.returncode == 0, result.stderr
    assert f"resumed '{uid}': t_stuck#0 (now finished)" in result.stdout
    with store.open(uid) as storage:
        stuck = storage["t_stuck#0"]
        assert stuck.status is InstanceStatus.FINISHED
        assert stuck.metadata[run_leases.ATTEMPT_KEY] == 2
        assert stuck.metadata[run_leases.EXPIRED_ATTEMPTS_KEY] == [1]
        assert storage["t_next#0"].status is InstanceStatus.FINISHED
    again = run_in_process(*store.flags, "resume", uid, "--json")
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout) == {"sessions": [{"uid": uid, "scheduled": [], "failed": []}]}


def test_resume_all_resumes_every_session(store: Store, uid: str) -> None:
    make_stuck_session(store, uid)
    make_stuck_session(store, uid + "-b")
    result = run_in_process(*store.flags, "resume", "--all", "--json")
    assert result.returncode == 0, result.stderr
    sessions = json.loads(result.stdout)["sessions"]
    assert [s["uid"] for s in sessions] == [uid, uid + "-b"]
    assert all(s["scheduled"] == [{"instance": "t_stuck#0", "status": "finished"}] for s in sessions)


@pytest.mark.parametrize("args", [["resume"], ["resume", "x", "--all"]])
def test_resume_needs_uids_or_all(store: Store, args: list[str]) -> None:
    result = run_in_process(*store.flags, *args)
    assert result.returncode == 2
    assert "name the sessions to resume (UID ...) or pass --all" in result.stderr


def test_list_counts_each_session_s_unresolved_work(store: Store, uid: str) -> None:
    make_sample_session(store, uid)  # t_import failed (with an error logged), t_report waits
    make_stuck_session(store, uid + "-stuck")
    result = run_in_process(*store.flags, "list", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert listing["backend"] == "sql"
    assert listing["sessionsTotal"] == 2
    assert listing["sessions"] == [
        {"uid": uid, "tasks": 4, "unresolved": {"unstarted": 0, "scheduled": 0, "running": 0, "failed": 1},
         "expiredLeases": 0, "unresolvedLogs": 1},
        {"uid": uid + "-stuck", "tasks": 2,
         "unresolved": {"unstarted": 0, "scheduled": 0, "running": 1, "failed": 0},
         "expiredLeases": 1, "unresolvedLogs": 0},
    ]
    running = json.loads(run_in_process(*store.flags, "list", "--status", "running", "--json").stdout)
    assert [s["uid"] for s in running["sessions"]] == [uid + "-stuck"]
    limited = json.loads(run_in_process(*store.flags, "list", "--limit", "1", "--json").stdout)
    assert [s["uid"] for s in limited["sessions"]] == [uid]
    text = run_cli(*store.flags, "list")
    assert text.returncode == 0, text.stderr
    assert uid + "-stuck" in text.stdout
    assert "2 of 2 sessions listed" in text.stdout


def test_list_reads_the_backend_s_own_listing(namespace: str) -> None:
    # memory lists the sessions of its namespace in this process only (run_in_process).
    storage = MemoryStorageBackend("mem-1", namespace=namespace)
    TriggerManager(storage, runner=core_lease_tasks.HoldingRunner()).update_configuration(
        {"t": {"after": [], "andEvery": "go", "run": "test_cli_fixtures.succeed"}})
    TriggerManager(storage, runner=core_lease_tasks.HoldingRunner()).fire("go")
    result = run_in_process("--backend", "memory", "--option", f"namespace={namespace}", "list", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["sessions"] == [
        {"uid": "mem-1", "tasks": 1, "unresolved": {"unstarted": 0, "scheduled": 1, "running": 0, "failed": 0},
         "expiredLeases": 0, "unresolvedLogs": 0}]


def test_set_status_repairs_a_running_instance(store: Store, uid: str) -> None:
    make_stuck_session(store, uid)
    refused = run_in_process(*store.flags, "skip", uid, "t_stuck#0")
    assert refused.returncode == 1 and "only failed instances" in refused.stderr
    result = run_cli(*store.flags, "set-status", uid, "t_stuck#0", "finished", "--cascade",
                     "--result", '{"rows": 3}', "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "uid": uid, "instance": "t_stuck#0", "status": "finished",
        "scheduled": [{"instance": "t_next#0", "status": "finished"}], "failed": [],
    }
    with store.open(uid) as storage:
        assert storage["t_stuck#0"].status is InstanceStatus.FINISHED
        assert storage["t_next#0"].kwargs == {"t_stuck": {"rows": 3}}


def test_set_status_finished_cascades_only_with_cascade(store: Store, uid: str) -> None:
    make_stuck_session(store, uid)
    result = run_cli(*store.flags, "set-status", uid, "t_stuck#0", "finished", "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["scheduled"] == []
    with store.open(uid) as storage:
        assert storage["t_stuck#0"].status is InstanceStatus.FINISHED
        assert "t_next#0" not in storage
    misused = run_in_process(*store.flags, "set-status", uid, "t_stuck#0", "failed", "--cascade")
    assert misused.returncode == 2 and "--cascade needs the status 'finished'" in misused.stderr


def test_set_status_refuses_a_change_that_is_not_allowed(store: Store, uid: str) -> None:
    make_sample_session(store, uid)
    result = run_in_process(*store.flags, "set-status", uid, "t_warn#0", "running")
    assert result.returncode == 1
    assert "cannot go from finished to running" in result.stderr
    bad = run_in_process(*store.flags, "set-status", uid, "t_warn#0", "done")
    assert bad.returncode == 2 and "invalid choice" in bad.stderr


def test_a_runner_made_in_code_is_named_module_colon_attribute(store: Store, uid: str) -> None:
    make_stuck_session(store, uid)
    core_lease_tasks.HOLDING.sent.clear()
    result = run_in_process(*store.flags, "resume", uid, "--runner", "core_lease_tasks:HOLDING")
    assert result.returncode == 0, result.stderr
    assert core_lease_tasks.HOLDING.sent == ["t_stuck#0"]
    assert f"resumed '{uid}': t_stuck#0 (now scheduled)" in result.stdout
    missing = run_in_process(*store.flags, "resume", uid, "--runner", "core_lease_tasks:NOPE")
    assert missing.returncode == 1
    assert "runner 'core_lease_tasks:NOPE' cannot be imported" in missing.stderr


def test_triggers_import_makes_registered_runners_known(store: Store, uid: str) -> None:
    make_stuck_session(store, uid)
    result = run_cli(*store.flags, "resume", uid, "--runner", "holding",
                     env={"TRIGGERS_IMPORT": "cli_registrations"})
    assert result.returncode == 0, result.stderr
    assert "t_stuck#0 (now scheduled)" in result.stdout  # the holding runner ran nothing
    unknown = run_cli(*store.flags, "resume", uid, "--runner", "holding")
    assert unknown.returncode == 1 and "no task runner named 'holding'" in unknown.stderr
    broken = run_cli(*store.flags, "list", env={"TRIGGERS_IMPORT": "no_such_module_here"})
    assert broken.returncode == 1
    assert "TRIGGERS_IMPORT names 'no_such_module_here', which cannot be imported" in broken.stderr
