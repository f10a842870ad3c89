"""Create the sql backend's tables in the database that ``migrate`` runs on.

For teams whose schema changes go through ``manage.py migrate``: when
``settings.TRIGGERS`` stores sessions in this database (the ``sql`` backend
with ``database=<this alias>``), the tables are created here, idempotently,
with ``SQLStorageBackend.create_schema``; set ``create_tables: False`` in the
storage options so the application itself never issues DDL. For any other
storage this migration does nothing. Reversing it leaves the tables (they
hold sessions).
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def create_triggers_tables(apps: Any, schema_editor: Any) -> None:
    from triggers.registry import storage_backends
    from triggers_django.conf import triggers_settings
    from triggers_django.databases import DATABASE_OPTION

    settings = triggers_settings()
    if settings.backend != "sql" or settings.options.get(DATABASE_OPTION) != schema_editor.connection.alias:
        return
    options = settings.storage_config()["options"]
    options.pop("create_tables", None)
    for option in ("lease_ttl", "lock_timeout", "clock"):
        options.pop(option, None)
    storage_backends.load("sql").create_schema(**options)


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.RunPython(create_triggers_tables, reverse_code=migrations.RunPython.noop,
                             elidable=False),
    ]
