"""Corrupted stored data: a clear error naming the session, and the damage left as it is.

Another program damages what a backend stored (see ``corruption``): garbage,
a truncated record or document, data of a newer format or schema version.
A process started afterwards loads the session, fires into it and tries to
save it: each attempt must raise a Triggers error (never a raw decoding or
driver traceback) that names the uid, or for a newer schema version says
which version it found, and the damaged data must be byte for byte what the
other program wrote: nothing is "repaired" by overwriting it.
"""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from triggers_reliability.corruption import KINDS
from triggers_reliability.figures import FIGURES
from triggers_reliability.targets import Target
from triggers_reliability.workloads import configure_steps, step

from triggers.errors import CorruptSessionError, SchemaError, TriggersError
from triggers.manager import TriggerManager
from triggers_conformance.processes import start_child


def _attempts(open_storage: Any, uid: str) -> list[tuple[str, str, str]]:
    """Load, fire into and save the session; how each attempt failed (type, message)."""

    def load() -> None:
        storage = open_storage(uid)
        _ = storage.metadata, storage.instances

    def fire() -> None:
        TriggerManager(open_storage(uid)).fire("never-fired")

    def save() -> None:
        storage = open_storage(uid)
        with storage.acquire_lock():
            storage.metadata["overwritten"] = True
            storage.save()

    outcomes = []
    for name, attempt in (("load", load), ("fire", fire), ("save", save)):
        try:
            attempt()
        except Exception as error:
            kind = "triggers" if isinstance(error, TriggersError) else "raw"
            outcomes.append((name, f"{kind} {type(error).__name__}", str(error)))
        else:
            outcomes.append((name, "no error", ""))
    return outcomes


@pytest.mark.parametrize("kind", KINDS)
def test_damaged_data_is_a_clear_error_naming_the_uid_and_is_left_untouched(
    target: Target, store: dict[str, Any], kind: str
) -> None:
    uid = f"damaged-{uuid.uuid4().hex[:8]}"

    def open_storage(uid: str) -> Any:
        return target.storage(store, uid, lock_timeout=10)

    configure_steps(open_storage(uid))
    step(open_storage(uid))
    step(open_storage(uid))
    raw = target.raw(store)
    before = raw.snapshot(uid)
    raw.damage(uid, kind)
    damaged = raw.snapshot(uid)
    assert damaged != before

    with FIGURES.timed("corrupted data", target.name) as tally:
        # A process started after the damage (it opens the store afresh).
        outcomes = start_child(_attempts, open_storage, uid).result(timeout=120)
        tally.faults += 1
        tally.operations += len(outcomes)
        tally.sessions += 1
        schema_level = kind == "foreign_version" and target.backend == "sql"
        expected = SchemaError if schema_level else CorruptSessionError
        for attempt, error, message in outcomes:
            assert error == f"triggers {expected.__name__}", f"{attempt}: {error}: {message}"
            if schema_level:
                assert "schema version" in message, f"{attempt}: {message}"
            else:
                assert repr(uid) in message, f"{attempt}: the error does not name the uid: {message}"
        assert raw.snapshot(uid) == damaged, "the damaged data was overwritten"
        tally.note = (tally.note + f" {kind}: {outcomes[0][1].split()[-1]};").strip()
