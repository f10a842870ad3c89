"""A real Django project for the tests, written to a temporary folder.

Each test runs it as an operator would, in subprocesses (``manage.py ...``,
or a script after ``django.setup()``), so every test gets Django configured
from scratch by its own settings module, and nothing here configures Django
in the test process itself (other packages' tests configure it their own way).

The project keeps its tables in a PostgreSQL schema of its own (dropped at the
end), found through ``search_path`` in ``DATABASES["default"]["OPTIONS"]``:
that is also how the tests prove that the sql storage's URL is built from
``DATABASES``, options included. Its cache is the Redis server.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

SETTINGS = textwrap.dedent(
    """
    import json, os
    SECRET_KEY = "tests"
    USE_TZ = True
    INSTALLED_APPS = ["triggers_django"]
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.postgresql",
            "NAME": "test", "USER": "postgres", "HOST": "127.0.0.1", "PORT": "5432",
            "OPTIONS": {"options": "-c search_path=" + os.environ["TEST_PG_SCHEMA"]},
        }
    }
    CACHES = {
        "default": {"BACKEND": "django.core.cache.backends.redis.RedisCache",
                    "LOCATION": "redis://127.0.0.1:6379/0", "KEY_PREFIX": os.environ["TEST_PG_SCHEMA"]},
    }
    if "TEST_TRIGGERS" in os.environ:
        TRIGGERS = json.loads(os.environ["TEST_TRIGGERS"])
    """
)

MANAGE = textwrap.dedent(
    """
    import os, sys
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project_settings")
    from django.core.management import execute_from_command_line
    execute_from_command_line(sys.argv)
    """
)

TASKS = textwrap.dedent(
    """
    def book(context):
        order = context.trigger_kwargs["orderPlaced"]["order"]
        return {"booked": order}
    """
)


@dataclass
class DjangoProject:
    """The project's folder and the PostgreSQL schema its tables live in."""

    path: Path
    schema: str

    def run(self, *args: str, triggers: Mapping[str, Any] | None = None,
            script: str | None = None) -> subprocess.CompletedProcess[str]:
        """``manage.py ARGS``, or ``script`` after ``django.setup()``; never raises."""
        env = {**os.environ, "TEST_PG_SCHEMA": self.schema, "DJANGO_SETTINGS_MODULE": "project_settings",
               "PYTHONPATH": str(self.path)}
        env.pop("TEST_TRIGGERS", None)
        if triggers is not None:
            env["TEST_TRIGGERS"] = json.dumps(triggers)
        if script is not None:
            command = [sys.executable, "-c", "import django; django.setup()\n" + textwrap.dedent(script)]
        else:
            command = [sys.executable, str(self.path / "manage.py"), *args]
        return subprocess.run(command, cwd=self.path, env=env, capture_output=True, text=True,
                              timeout=120, check=False)


def write_project(path: Path, schema: str) -> DjangoProject:
    path.mkdir(parents=True, exist_ok=True)
    (path / "project_settings.py").write_text(SETTINGS)
    (path / "manage.py").write_text(MANAGE)
    (path / "project_tasks.py").write_text(TASKS)
    return DjangoProject(path, schema)
