"""``triggers migrate`` end to end: SQLite file to SQLite file, resumed, ``--all``.

And from a Django FileBasedCache to SQLite, the move the command exists for
(cache → sql), with the cache configured the way a Django project does it:
``DJANGO_SETTINGS_MODULE``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_cli_fixtures import Store, make_sample_session, run_cli, run_in_process, sqlite_store


def migrate(source: Store, destination: Store, *args: str, env: dict[str, str] | None = None):  # type: ignore[no-untyped-def]
    flags: list[str] = []
    for role, store in (("from", source), ("to", destination)):
        flags += [f"--{role}", store.backend]
        for key, value in store.options.items():
            flags += [f"--{role}-option", f"{key}={value}"]
    return run_cli("migrate", *flags, *args, env=env)


def same_sessions(source: Store, destination: Store, *uids: str) -> None:
    for uid in uids:
        with source.open(uid) as original, destination.open(uid) as copy:
            assert copy.debug_repr() == original.debug_repr()


def test_migrate_named_sessions_then_resume(tmp_path: Path, uid: str) -> None:
    source, destination = sqlite_store(tmp_path / "a.db"), sqlite_store(tmp_path / "b.db")
    first, second = f"{uid}-1", f"{uid}-2"
    make_sample_session(source, first)
    make_sample_session(source, second)

    result = migrate(source, destination, first)
    assert result.returncode == 0, result.stderr
    assert "1 sessions: 1 copied, 0 already identical, 0 failed" in result.stdout
    same_sessions(source, destination, first)

    # Run again with both (as after an interruption): the first is skipped.
    result = migrate(source, destination, first, second)
    assert result.returncode == 0, result.stderr
    assert "2 sessions: 1 copied, 1 already identical, 0 failed" in result.stdout
    assert "2/2" in result.stderr  # the progress bar went to the end
    same_sessions(source, destination, first, second)


def test_migrate_all_and_what_fails(tmp_path: Path, uid: str) -> None:
    source, destination = sqlite_store(tmp_path / "a.db"), sqlite_store(tmp_path / "b.db")
    uids = [f"{uid}-{n}" for n in range(3)]
    for name in uids:
        make_sample_session(source, name)
    # The destination already holds a different session under one of the uids.
    with destination.open(uids[1]) as storage, storage.acquire_lock():
        storage.metadata["someone"] = "else"
        storage.save()

    result = migrate(source, destination, "--all")
    assert result.returncode == 1
    assert "3 sessions: 2 copied, 0 already identical, 1 failed" in result.stdout
    assert f"failed '{uids[1]}'" in result.stdout and "--replace" in result.stdout
    same_sessions(source, destination, uids[0], uids[2])
    with destination.open(uids[1]) as storage:
        assert dict(storage.metadata) == {"someone": "else"}

    replaced = migrate(source, destination, "--all", "--replace")
    assert replaced.returncode == 0, replaced.stdout
    assert "3 sessions: 1 copied, 2 already identical, 0 failed" in replaced.stdout
    same_sessions(source, destination, *uids)

    missing = run_in_process("migrate", "--from", "sql", "--from-option", f"url={source.options['url']}",
                             "--to", "sql", "--to-option", f"url={destination.options['url']}",
                             "never-saved")
    assert missing.returncode == 1
    assert "'never-saved' does not exist at the source" in missing.stdout


def test_migrate_refuses_the_same_store(tmp_path: Path) -> None:
    store = sqlite_store(tmp_path / "a.db")
    same = migrate(store, store, "x")
    assert same.returncode == 2 and "the same store" in same.stderr


def test_migrate_from_a_django_file_cache_to_sql(tmp_path: Path, uid: str) -> None:
    pytest.importorskip("django")
    sql = sqlite_store(tmp_path / "a.db")
    make_sample_session(sql, uid)
    exported = run_in_process(*sql.flags, "export", uid)
    assert exported.returncode == 0, exported.stderr

    settings = tmp_path / "settings" / "cli_cache_settings.py"
    settings.parent.mkdir()
    cache_dir = tmp_path / "cache"
    settings.write_text(
        "CACHES = {'default': {'BACKEND': 'django.core.cache.backends.filebased.FileBasedCache', "
        f"'LOCATION': {str(cache_dir)!r}}}}}\nUSE_TZ = True\n"
    )
    django = {"DJANGO_SETTINGS_MODULE": "cli_cache_settings",
              "PYTHONPATH": str(settings.parent)}
    cache = Store("cache", {})
    imported = run_cli(*cache.flags, "import", "-", stdin=exported.stdout, env=django)
    assert imported.returncode == 0, imported.stderr

    destination = sqlite_store(tmp_path / "b.db")
    cannot = migrate(cache, destination, "--all", env=django)
    assert cannot.returncode == 2
    assert "'cache' cannot list its sessions" in cannot.stderr

    result = migrate(cache, destination, uid, env=django)
    assert result.returncode == 0, (result.stdout, result.stderr)
    assert "1 sessions: 1 copied" in result.stdout
    copied = run_in_process(*destination.flags, "export", uid)
    assert json.loads(copied.stdout) == json.loads(exported.stdout)
