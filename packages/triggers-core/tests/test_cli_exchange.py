"""``triggers export`` / ``triggers import`` and the session document under them.

The round trip runs end to end (subprocesses on SQLite); the document's
checks and the core helper that writes a whole session run in process, on
the memory backend, where they are quick.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from test_cli_fixtures import Store, make_sample_session, run_cli, run_in_process, sqlite_store

from triggers.cli.exchange import (
    DocumentError,
    SessionExistsError,
    document_from_json,
    load_document,
    read_session,
    write_session,
)
from triggers.memory import MemoryStorageBackend
from triggers.registry import storage_config_from_env
from triggers.types import InstanceStatus


def export(store: Store, uid: str) -> dict[str, Any]:
    result = run_cli(*store.flags, "export", uid)
    assert result.returncode == 0, result.stderr
    document: dict[str, Any] = json.loads(result.stdout)
    return document


def test_export_then_import_into_another_database_is_equal(tmp_path: Path, uid: str) -> None:
    source, destination = sqlite_store(tmp_path / "a.db"), sqlite_store(tmp_path / "b.db")
    make_sample_session(source, uid)
    path = tmp_path / "session.json"
    exported = run_cli(*source.flags, "export", uid, "-o", str(path))
    assert exported.returncode == 0, exported.stderr
    document = json.loads(path.read_text())
    assert document["format"] == "triggers-session" and document["version"] == 1
    assert document["uid"] == uid

    imported = run_cli(*destination.flags, "import", str(path))
    assert imported.returncode == 0, imported.stderr
    assert "imported (4 tasks, 2 instances)" in imported.stdout
    assert export(destination, uid) == document
    with source.open(uid) as original, destination.open(uid) as copy:
        assert copy.debug_repr() == original.debug_repr()
        when = copy["t_import#0"].kwargs["start"]["when"]
        assert when == datetime(2026, 11, 28, 12, 30, tzinfo=UTC)
        assert copy.instance_count("t_import") == 1

    again = run_in_process(*destination.flags, "import", str(path))
    assert again.returncode == 0 and "already identical" in again.stdout

    renamed = run_cli(*destination.flags, "import", "-", "--uid", "copy-of-it", stdin=path.read_text())
    assert renamed.returncode == 0, renamed.stderr
    exported_again = run_in_process(*destination.flags, "export", "copy-of-it")
    assert json.loads(exported_again.stdout) == {**document, "uid": "copy-of-it"}


def test_import_refuses_to_overwrite_unless_replace(tmp_path: Path, uid: str) -> None:
    store = sqlite_store(tmp_path / "a.db")
    make_sample_session(store, uid)
    document = json.loads(run_in_process(*store.flags, "export", uid).stdout)
    document["metadata"]["note"] = "edited by hand"
    document["instances"]["t_warn#0"]["metadata"]["logsResolved"] = True
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(document))

    refused = run_in_process(*store.flags, "import", str(path))
    assert refused.returncode == 1
    assert "already exists" in refused.stderr and "--replace" in refused.stderr
    with store.open(uid) as storage:
        assert "note" not in storage.metadata

    replaced = run_in_process(*store.flags, "import", str(path), "--replace")
    assert replaced.returncode == 0, replaced.stderr
    assert "replaced" in replaced.stdout
    assert json.loads(run_in_process(*store.flags, "export", uid).stdout) == document


@pytest.mark.parametrize(
    ("text", "complaint"),
    [
        ("{oops", "not valid JSON"),
        ("[]", "a JSON object was expected"),
        ('{"format": "other", "version": 1, "uid": "u"}', "format is 'other'"),
        ('{"format": "triggers-session", "version": 2, "uid": "u"}', "newer release"),
        ('{"format": "triggers-session", "version": 1, "uid": ""}', "'uid' must be"),
        ('{"format": "triggers-session", "version": 1, "uid": "u", "tasks": []}', "'tasks' must be an object"),
        ('{"format": "triggers-session", "version": 1, "uid": "u", "extra": 1}', "unknown fields ['extra']"),
    ],
)
def test_malformed_documents_are_refused_by_name(text: str, complaint: str) -> None:
    with pytest.raises(DocumentError, match=r"doc\.json") as caught:
        load_document(text, "doc.json")
    assert complaint in str(caught.value)


def test_import_of_a_bad_file_is_one_line(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "a.db")
    missing = run_cli(*store.flags, "import", str(tmp_path / "nope.json"))
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"triggers: error: {tmp_path / 'nope.json'}: No such file or directory"
    (tmp_path / "v2.json").write_text('{"format": "triggers-session", "version": 2, "uid": "u"}')
    newer = run_cli(*store.flags, "import", str(tmp_path / "v2.json"))
    assert newer.returncode == 1 and "newer release" in newer.stderr
    assert len(newer.stderr.strip().splitlines()) == 1


# --- in process: writing a whole session --------------------------------------------------


def memory(namespace: str, uid: str) -> MemoryStorageBackend:
    return MemoryStorageBackend(uid, namespace=namespace)


SAMPLE = {
    "format": "triggers-session",
    "version": 1,
    "uid": "original",
    "tasks": {"t": {"after": ["go"], "run": "x.y"}},
    "instances": {
        "t#3": {"task": "t", "status": "failed", "kwargs": {"go": {"$$k": 1}},
                "metadata": {"depth": 1, "parent": "t#1", "at": {"$datetime": "2026-01-01T00:00:00+00:00"}}},
        "t#1": {"task": "t", "status": "replayed", "kwargs": {"go": {}}, "metadata": {}},
    },
    "metadata": {"instanceCounts": {"t": 4}, "triggerKwargs": {"go": {"$$k": 1}}},
}


def test_write_session_keeps_names_statuses_and_counters_exactly(namespace: str, uid: str) -> None:
    document = document_from_json(SAMPLE, "sample")
    with memory(namespace, uid) as storage:
        before = write_session(storage, document)
        assert before is not None and before.is_empty
    with memory(namespace, uid) as storage:
        assert read_session(storage).content() == document.content()
        failed = storage["t#3"]
        assert failed.status is InstanceStatus.FAILED
        assert failed.kwargs == {"go": {"$k": 1}}
        assert failed.metadata["at"] == datetime(2026, 1, 1, tzinfo=UTC)
        with storage.acquire_lock():
            assert storage.create_instance("t").name == "t#4"  # the counter came along


def test_write_session_refuses_what_it_cannot_replace(namespace: str, uid: str) -> None:
    document = document_from_json(SAMPLE, "sample")
    with memory(namespace, uid) as storage:
        write_session(storage, document)
        assert write_session(storage, document) is None  # identical: nothing to do
        smaller = document_from_json({**SAMPLE, "instances": {}}, "smaller")
        with pytest.raises(SessionExistsError, match="--replace"):
            write_session(storage, smaller)
        with pytest.raises(SessionExistsError, match="instance 't#1', instance 't#3'"):
            write_session(storage, smaller, replace=True)
    with memory(namespace, uid) as storage:
        assert read_session(storage).content() == document.content()


@pytest.mark.parametrize(
    ("instances", "complaint"),
    [
        ({"u#0": {"task": "u", "status": "failed"}}, "unknown task 'u'"),
        ({"t#0": {"task": "t", "status": "exploded"}}, "exploded"),
        ({"t": {"task": "t", "status": "failed"}}, "not named t#N"),
        ({"t#0": "failed"}, "must be a mapping"),
    ],
)
def test_write_session_refuses_bad_instances_and_writes_nothing(
    namespace: str, uid: str, instances: dict[str, Any], complaint: str
) -> None:
    document = document_from_json({**SAMPLE, "instances": instances}, "bad")
    with memory(namespace, uid) as storage, pytest.raises(DocumentError, match=re.escape(complaint)):
        write_session(storage, document)
    with memory(namespace, uid) as storage:
        assert read_session(storage).is_empty


def test_write_session_refuses_a_bad_task_and_writes_nothing(namespace: str, uid: str) -> None:
    document = document_from_json({**SAMPLE, "tasks": {"t": {"after": ["go"]}}}, "bad")
    with memory(namespace, uid) as storage:
        with pytest.raises(DocumentError, match="directive 'run' is required"):
            write_session(storage, document)
        assert read_session(storage).is_empty


def test_storage_config_from_env() -> None:
    environ = {"TRIGGERS_STORAGE_BACKEND": "memory", "TRIGGERS_STORAGE_OPTIONS": '{"namespace": "n"}'}
    assert storage_config_from_env(environ) == {"backend": "memory", "options": {"namespace": "n"}}
    assert storage_config_from_env({}, default="memory") == {"backend": "memory", "options": {}}
