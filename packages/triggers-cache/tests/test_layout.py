"""The layout on memcached: sessions larger than one item.

The layout's other rules (constant bytes per fire, index documents, every
kind of key lost, savers dying half way) run on every cache through the
conformance suite's :class:`~triggers_conformance.KeyValueConformance`
(``test_conformance.py``).
"""

from __future__ import annotations

import pytest
from sessions import Sessions, page_numbers


@pytest.mark.usefixtures("memcached_server")
def test_memcached_keeps_sessions_larger_than_one_item() -> None:
    sessions = Sessions("memcached")
    storage = sessions.build(finished=10_000, fires=2)  # about 1.6 MB of history
    assert len(sessions.head().recent) >= 4  # in several items
    numbers = page_numbers(sessions.open())
    assert sorted(map(str, numbers)) == sorted([*map(str, range(10_000)), "fire 0", "fire 1"])
    assert storage.instance_count("t_page") == 10_002
