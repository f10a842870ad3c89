"""Stored text never reaches the terminal as control sequences or markup.

Names, kwargs, error messages and tracebacks may come from outside input. The
``triggers`` command prints each of them with every control character (C0
but the newlines between traceback lines, DEL, C1) and bidi control escaped,
and never reads them as rich markup: end to end, on SQLite.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from test_cli_fixtures import Store, run_cli, sqlite_store

from triggers.cli.render import printable
from triggers.manager import TriggerManager
from triggers.tasks import TaskContext

MARKUP = "[red]x[/red]"
HOSTILE = (
    "\x1b]0;pwned\x07"  # OSC: set the window title
    "\x1b]52;c;ZXZpbA==\x07"  # OSC 52: write the clipboard
    "\x1b[2J"  # CSI: clear the screen
    "\x9b31m"  # C1 CSI
    "\x7f\r"  # DEL, carriage return (overwrites a report line)
    "\u202eevil\u2066\u200f\u061c"  # bidi controls
    + MARKUP
)
"""Every kind of sequence a terminal acts on, and rich markup."""

UNSAFE = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")
"""What must never be printed raw (newlines may, between lines)."""

TASK = f"t{HOSTILE}"
TRIGGER = f"start{HOSTILE}"


def explode_hostile(context: TaskContext) -> None:
    """Fail with an exception whose message (and so traceback) is outside input."""
    raise RuntimeError(f"bad input {HOSTILE}")


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return sqlite_store(tmp_path / "sessions.db")


@pytest.fixture
def hostile_session(store: Store) -> str:
    """A session whose uid, task, trigger, kwargs, metadata and failure all carry HOSTILE."""
    uid = f"s{HOSTILE}"
    with store.open(uid) as storage:
        manager = TriggerManager(storage)
        manager.update_configuration({
            TASK: {"after": [TRIGGER], "run": "test_cli_hostile_text.explode_hostile"},
        })
        manager.fire(TRIGGER, {HOSTILE: HOSTILE})
        storage.metadata["note"] = HOSTILE
    return uid


def assert_safe(output: str) -> None:
    assert not UNSAFE.findall(output), [hex(ord(c)) for c in UNSAFE.findall(output)]


def test_printable_escapes_every_control_and_keeps_the_rest() -> None:
    assert printable("a\x1b[2Jb\x9b\u202e\n") == "a\\x1b[2Jb\\x9b\\u202e\\x0a"
    assert printable("line one\nline two\r", multiline=True) == "line one\nline two\\x0d"
    assert printable("página é 日本 [red]x[/red]") == "página é 日本 [red]x[/red]"


def test_inspect_escapes_every_stored_field(store: Store, hostile_session: str) -> None:
    result = run_cli(*store.flags, "inspect", hostile_session)
    assert result.returncode == 0, result.stderr
    assert_safe(result.stdout)
    assert_safe(result.stderr)
    flat = "".join(result.stdout.split())  # table cells may fold across lines
    assert "".join(printable(TASK).split()) in flat  # the task, its instance, the failure title
    assert "\\x1b]52;c;" in result.stdout  # shown, escaped, not sent to the terminal
    assert "\\u202eevil" in result.stdout
    assert flat.count(MARKUP) >= 4, result.stdout  # uid, task, trigger, kwargs, message...
    assert "RuntimeError: bad input" in result.stdout
    assert "Traceback (most recent call last)" in result.stdout  # still separate lines
    assert "explode_hostile" in result.stdout


def test_operations_print_names_literally(store: Store, hostile_session: str) -> None:
    fired = run_cli(*store.flags, "fire", hostile_session, TRIGGER, "--kwargs", "{}")
    assert fired.returncode == 0, fired.stderr
    assert_safe(fired.stdout)
    assert MARKUP in fired.stdout  # not read as markup (which would print just "x")
    skipped = run_cli(*store.flags, "resolve-logs", hostile_session, f"{TASK}#0")
    assert_safe(skipped.stdout + skipped.stderr)
    assert MARKUP in skipped.stdout + skipped.stderr


def test_errors_naming_stored_text_are_escaped(store: Store, hostile_session: str) -> None:
    result = run_cli(*store.flags, "replay", hostile_session, f"{TASK}#99")
    assert result.returncode == 1
    assert_safe(result.stderr)
    assert result.stderr.startswith("triggers: error: ")


def test_import_and_export_report_lines_are_escaped(store: Store, hostile_session: str,
                                                    tmp_path: Path) -> None:
    target = tmp_path / "session.json"
    exported = run_cli(*store.flags, "export", hostile_session, "--output", str(target))
    assert exported.returncode == 0, exported.stderr
    assert_safe(exported.stderr)
    assert MARKUP in exported.stderr
    imported = run_cli(*store.flags, "import", str(target), "--uid", f"copy{HOSTILE}")
    assert imported.returncode == 0, imported.stderr
    assert_safe(imported.stdout)
    assert MARKUP in imported.stdout
