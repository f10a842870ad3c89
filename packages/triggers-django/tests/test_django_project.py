"""triggers-django in a real Django project, on PostgreSQL and Redis."""

from __future__ import annotations

import json
import uuid

import pytest
from django_project import DjangoProject

SQL_ON_DEFAULT = {"STORAGE": {"backend": "sql", "options": {"database": "default"}}}
CONFIGURATION = {"t_book": {"after": ["orderPlaced"], "run": "project_tasks.book"}}

SCENARIO = """
import json, sys
from django.db import connection, transaction
from triggers_django import fire_on_commit, get_manager, get_storage

CONFIGURATION = {configuration!r}
uid = {uid!r}
get_manager(uid).update_configuration(CONFIGURATION)
with connection.cursor() as cursor:
    cursor.execute("CREATE TABLE orders (n integer)")

def orders():
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM orders")
        return cursor.fetchone()[0]

def state():
    with get_storage(uid) as storage:
        return {{name: i.status.value for name, i in storage.instances.items()}}

report = {{}}
# 1. A plain fire inside an atomic block that rolls back: Triggers keeps it.
try:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO orders VALUES (1)")
        get_manager(uid).fire("orderPlaced", {{"order": 1}})
        raise RuntimeError("the view failed after the fire")
except RuntimeError:
    pass
report["plain"] = {{"orders": orders(), "instances": state()}}

# 2. fire_on_commit in a block that rolls back: nothing is fired.
uid = {uid!r} + "-on-commit"
get_manager(uid).update_configuration(CONFIGURATION)
try:
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("INSERT INTO orders VALUES (2)")
        fire_on_commit(uid, "orderPlaced", {{"order": 2}})
        raise RuntimeError("rolled back")
except RuntimeError:
    pass
report["rolled_back"] = {{"orders": orders(), "instances": state()}}

# 3. ... and in a block that commits: fired after the commit.
with transaction.atomic():
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO orders VALUES (3)")
    fire_on_commit(uid, "orderPlaced", {{"order": 3}})
    report["before_commit"] = state()
report["committed"] = {{"orders": orders(), "instances": state()}}
with get_storage(uid) as storage:
    report["kwargs"] = storage["t_book#0"].kwargs
print(json.dumps(report))
"""


def _json(result: object) -> dict[str, object]:
    assert result.returncode == 0, (result.stdout, result.stderr)  # type: ignore[attr-defined]
    lines = result.stdout.strip().splitlines()  # type: ignore[attr-defined]
    parsed: dict[str, object] = json.loads(lines[-1])
    return parsed


def test_migrate_creates_the_sql_tables_in_the_projects_database(project: DjangoProject) -> None:
    migrated = project.run("migrate", "--noinput", triggers=SQL_ON_DEFAULT)
    assert migrated.returncode == 0, migrated.stderr
    tables = _json(project.run(triggers=SQL_ON_DEFAULT, script="""
        import json
        from django.db import connection
        print(json.dumps({"tables": sorted(connection.introspection.table_names())}))
    """))["tables"]
    assert "triggers_sessions" in tables  # type: ignore[operator]
    checked = project.run("triggers", "schema", "check", "--json", triggers=SQL_ON_DEFAULT)
    assert checked.returncode == 0, checked.stderr
    assert json.loads(checked.stdout)["hasSchema"] is True


def test_a_fire_inside_a_rolled_back_block_stays_and_fire_on_commit_waits(project: DjangoProject) -> None:
    assert project.run("migrate", "--noinput", triggers=SQL_ON_DEFAULT).returncode == 0
    uid = f"order-{uuid.uuid4().hex[:8]}"
    report = _json(project.run(triggers=SQL_ON_DEFAULT, script=SCENARIO.format(
        configuration=CONFIGURATION, uid=uid)))
    # The rolled-back block took its order with it; Triggers kept the fire and the task's run.
    assert report["plain"] == {"orders": 0, "instances": {"t_book#0": "finished"}}
    # fire_on_commit: nothing on rollback, the fire once the block committed.
    assert report["rolled_back"] == {"orders": 0, "instances": {}}
    assert report["before_commit"] == {}
    assert report["committed"] == {"orders": 1, "instances": {"t_book#0": "finished"}}
    assert report["kwargs"] == {"orderPlaced": {"order": 3}}


def test_get_manager_on_the_cache_backend_with_redis(project: DjangoProject) -> None:
    pytest.importorskip("triggers_cache")
    on_redis = {"STORAGE": {"backend": "cache", "options": {"cache": "default"}}, "RUNNER": "eager"}
    uid = f"cache-{uuid.uuid4().hex[:8]}"
    report = _json(project.run(triggers=on_redis, script=f"""
        import json
        from triggers_django import get_manager, get_storage
        manager = get_manager({uid!r})
        manager.update_configuration({CONFIGURATION!r})
        manager.fire("orderPlaced", {{"order": 9}})
        with get_storage({uid!r}) as storage:
            print(json.dumps({{"backend": type(storage).__name__,
                               "status": storage["t_book#0"].status.value}}))
    """))
    assert report["status"] == "finished"
    assert "Cache" in str(report["backend"])


def test_manage_py_triggers_inspects_the_projects_sessions(project: DjangoProject) -> None:
    assert project.run("migrate", "--noinput", triggers=SQL_ON_DEFAULT).returncode == 0
    uid = f"inspect-{uuid.uuid4().hex[:8]}"
    project.run(triggers=SQL_ON_DEFAULT, script=f"""
        from triggers_django import get_manager
        manager = get_manager({uid!r})
        manager.update_configuration({CONFIGURATION!r})
        manager.fire("orderPlaced", {{"order": 4}})
    """).check_returncode()
    inspected = project.run("triggers", "inspect", uid, "--json", triggers=SQL_ON_DEFAULT)
    assert inspected.returncode == 0, inspected.stderr
    document = json.loads(inspected.stdout)
    assert document["instances"]["t_book#0"]["status"] == "finished"
    assert document["backend"] == "sql"
    # call_command passes arguments the same way, and a failure is a CommandError.
    called = project.run(triggers=SQL_ON_DEFAULT, script=f"""
        from django.core.management import call_command, CommandError
        call_command("triggers", "inspect", {uid!r})
        try:
            call_command("triggers", "inspect", "no-such-session")
        except CommandError as exc:
            print("refused:", exc)
    """)
    assert called.returncode == 0, called.stderr
    assert "t_book#0" in called.stdout and "refused: triggers exited with status 1" in called.stdout


@pytest.mark.parametrize(
    ("triggers", "check_id", "words"),
    [
        ("not a dict", "triggers_django.E001", "must be a dict"),
        ({"STORAGE": {"backend": "nosuch"}}, "triggers_django.E002", "'nosuch'"),
        ({"STORAGE": {"backend": "sql", "options": {"database": "replica"}}},
         "triggers_django.E004", "no such alias"),
        ({"STORAGE": {"backend": "sql", "options": {"url": "sqlite:///x.db", "colour": 1}}},
         "triggers_django.E004", "colour"),
        ({"STORAGE": {"backend": "sql", "options": {"url": "mysql+mysqldb://db/app"}}},
         "triggers_django.E003", "pip install 'triggers-sql[mysql]'"),
        ({**SQL_ON_DEFAULT, "RUNNER": "nosuch-runner"}, "triggers_django.E005", "nosuch-runner"),
    ],
)
def test_system_checks_name_what_is_wrong(project: DjangoProject, triggers: object, check_id: str,
                                          words: str) -> None:
    result = project.run("check", triggers=triggers)  # type: ignore[arg-type]
    assert result.returncode == 1
    assert check_id in result.stderr and words in result.stderr, result.stderr


def test_the_database_check_warns_of_a_store_that_does_not_answer(project: DjangoProject) -> None:
    unreachable = {"STORAGE": {"backend": "sql", "options": {"url": "postgresql+psycopg://postgres@127.0.0.1:1/x"}}}
    quiet = project.run("check", triggers=unreachable)
    assert quiet.returncode == 0 and "W001" not in quiet.stderr + quiet.stdout  # no I/O by default
    probed = project.run("check", "--database", "default", triggers=unreachable)
    assert "triggers_django.W001" in probed.stderr + probed.stdout
    assert "does not answer" in probed.stderr + probed.stdout
    assert project.run("migrate", "--noinput", triggers=SQL_ON_DEFAULT).returncode == 0
    fine = project.run("check", "--database", "default", triggers=SQL_ON_DEFAULT)
    assert "triggers_django" not in fine.stderr + fine.stdout
