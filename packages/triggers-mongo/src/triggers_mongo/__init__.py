"""triggers-mongo: Triggers session state in MongoDB (entry point ``mongo``).

>>> from triggers import storage_backends
>>> storage = storage_backends.get("mongo", "session-1", url="mongodb://localhost")  # doctest: +SKIP
"""

from triggers_mongo.backend import MongoStorageBackend

__version__ = "0.1.0"

__all__ = ["MongoStorageBackend"]
