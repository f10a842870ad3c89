"""What the triggers-sql tests pass around: one test run's database and table prefix.

A module of its own, not in ``conftest.py``: several test folders have a
``conftest`` module, so ``from conftest import ...`` would depend on which
folder pytest collected first.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass


@dataclass(frozen=True)
class Database:
    """Where one test run's tables live."""

    name: str
    url: str
    table_prefix: str

    @property
    def options(self) -> dict[str, str]:
        return {"url": self.url, "table_prefix": self.table_prefix}


def new_prefix() -> str:
    return f"t{uuid.uuid4().hex[:10]}_"
