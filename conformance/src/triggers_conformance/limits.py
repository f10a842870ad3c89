"""Declared limits, probed exactly at the limit and one unit over it."""

from __future__ import annotations

import uuid
from collections.abc import Callable

import pytest

from triggers import values
from triggers.capabilities import Capabilities
from triggers.errors import SessionLimitError
from triggers.storage import TriggerStorageBackend
from triggers_conformance.base import ConformanceBase, StorageFactory
from triggers_conformance.guarantees import guarantee

Reload = Callable[[str], TriggerStorageBackend]


def _instance_bytes(backend: TriggerStorageBackend, name: str) -> int:
    return len(values.canonical_json(backend[name].to_mapping()).encode("utf-8"))


class LimitTests(ConformanceBase):
    @guarantee("limits", requires="max_uid_length")
    def test_uid_length_at_and_over_the_limit(
        self, make_storage: StorageFactory, reload: Reload, capabilities: Capabilities
    ) -> None:
        limit = capabilities.max_uid_length
        assert limit is not None
        longest = (uuid.uuid4().hex * (limit // 32 + 1))[:limit]
        backend = make_storage(longest)
        with backend.acquire_lock():
            backend.metadata["fits"] = True
            backend.save()
        backend.close()
        assert reload(longest).metadata == {"fits": True}
        with pytest.raises(ValueError, match=str(limit)):
            make_storage(longest + "x")

    @guarantee("limits", requires="max_record_bytes")
    def test_record_size_at_and_over_the_limit(
        self, storage: TriggerStorageBackend, reload: Reload, capabilities: Capabilities
    ) -> None:
        limit = capabilities.max_record_bytes
        assert limit is not None
        with storage.acquire_lock():
            storage.update_configuration({"t_a": self.task("noop", after=["x"])})
            storage.create_instance("t_a", metadata={"pad": ""})
            storage.create_instance("t_a", metadata={"pad": ""})
            for name in ("t_a#0", "t_a#1"):
                storage[name].metadata["pad"] = "p" * (limit - _instance_bytes(storage, name))
            assert _instance_bytes(storage, "t_a#0") == limit
            storage.save()
        assert _instance_bytes(reload(storage.uid), "t_a#0") == limit
        with storage.acquire_lock():
            storage["t_a#0"].metadata["pad"] += "p"
            storage["t_a#1"].metadata["pad"] = "changed"
            with pytest.raises(SessionLimitError, match="t_a#0"):
                storage.save()
        fresh = reload(storage.uid)
        assert _instance_bytes(fresh, "t_a#0") == limit
        assert fresh["t_a#1"].metadata["pad"] != "changed"

    @guarantee("limits", requires="max_record_bytes")
    def test_session_metadata_value_over_the_record_limit(
        self, storage: TriggerStorageBackend, reload: Reload, capabilities: Capabilities
    ) -> None:
        limit = capabilities.max_record_bytes
        assert limit is not None
        with storage.acquire_lock():
            storage.metadata["small"] = "kept"
            storage.save()
        with storage.acquire_lock():
            storage.metadata["small"] = "changed"
            storage.metadata["huge"] = "h" * limit  # its JSON text is two quotes longer
            with pytest.raises(SessionLimitError, match="huge"):
                storage.save()
        assert reload(storage.uid).metadata == {"small": "kept"}

    @guarantee("limits", requires="max_session_bytes")
    def test_session_size_at_and_over_the_limit(
        self, storage: TriggerStorageBackend, reload: Reload, capabilities: Capabilities
    ) -> None:
        limit = capabilities.max_session_bytes
        assert limit is not None
        # Filled with metadata values each within the record limit, if any.
        chunk = min(limit, capabilities.max_record_bytes or limit) - 200
        with storage.acquire_lock():
            storage.metadata["pad"] = ""
            filler = 0
            while limit - storage._session_bytes() > chunk + 100:
                storage.metadata[f"fill{filler}"] = "f" * chunk
                filler += 1
            storage.metadata["pad"] = "p" * (limit - storage._session_bytes())
            assert storage._session_bytes() == limit
            storage.save()
        with storage.acquire_lock():
            storage.metadata["pad"] += "p"
            with pytest.raises(SessionLimitError, match=str(limit)):
                storage.save()
        assert reload(storage.uid).metadata["pad"] == "p" * (len(storage.metadata["pad"]) - 1)
