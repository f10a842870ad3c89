"""triggers-sql: Triggers session state in SQL databases (entry point ``sql``).

>>> from triggers import storage_backends
>>> storage = storage_backends.get("sql", "session-1", url="sqlite:///triggers.db")  # doctest: +SKIP
"""

from triggers_sql.backend import SQLStorageBackend
from triggers_sql.schema import SCHEMA_VERSION
from triggers_sql.store import SQLStore

__version__ = "0.1.0"

__all__ = ["SCHEMA_VERSION", "SQLStorageBackend", "SQLStore"]
