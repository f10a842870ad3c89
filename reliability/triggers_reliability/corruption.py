"""Reading and corrupting a session's raw stored data, one small class per store.

The corruption scenario plays "another program" that damages what a backend
stored: garbage, a truncated document, data of a newer format or schema
version. Each store's class can ``snapshot`` everything stored for a session
(leases excluded: taking and releasing a lock may touch them) so the test can
prove that nothing the backend did afterwards overwrote the damaged data.

The protocol and the kinds of damage belong to the conformance suite
(:mod:`triggers_conformance.damage`), whose damaged-data tests use the same
classes; each class lives in its backend's tests folder (``<backend>_raw_store``),
next to the other test helpers that know the backend's stored layout.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from triggers_conformance.damage import GARBAGE, KINDS, RawStore

__all__ = ["GARBAGE", "KINDS", "CacheRawStore", "DynamoDBRawStore", "MongoRawStore", "RawStore", "SQLRawStore"]

_PACKAGES = Path(__file__).resolve().parents[2] / "packages"


def _raw_store_class(backend: str, name: str) -> Any:
    """``<backend>_raw_store.<name>``, from the backend's tests folder."""
    folder = str(_PACKAGES / f"triggers-{backend}" / "tests")
    if folder not in sys.path:
        sys.path.append(folder)
    return getattr(importlib.import_module(f"{backend}_raw_store"), name)


SQLRawStore = _raw_store_class("sql", "SQLRawStore")
CacheRawStore = _raw_store_class("cache", "CacheRawStore")
MongoRawStore = _raw_store_class("mongo", "MongoRawStore")
DynamoDBRawStore = _raw_store_class("dynamodb", "DynamoDBRawStore")
