"""triggers-dynamodb: Triggers session state in Amazon DynamoDB (entry point ``dynamodb``).

>>> from triggers import storage_backends
>>> storage = storage_backends.get("dynamodb", "session-1", table_name="triggers")  # doctest: +SKIP
"""

from triggers_dynamodb.backend import DynamoDBStorageBackend
from triggers_dynamodb.store import DynamoDBStore
from triggers_dynamodb.table import check_table, create_table

__version__ = "0.1.0"

__all__ = ["DynamoDBStorageBackend", "DynamoDBStore", "check_table", "create_table"]
