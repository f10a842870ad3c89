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
from triggers_reliability.figures import FIGURES
from triggers_reliability.targets import Target
from triggers_reliability.workloads import configure_steps, step

from triggers_conformance.damage import KINDS
from triggers_conformance.damaged_data import assert_reported, load_fire_save
from triggers_conformance.processes import start_child


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
        outcomes = start_child(load_fire_save, open_storage, uid).result(timeout=120)
        tally.faults += 1
        tally.operations += len(outcomes)
        tally.sessions += 1
        schema_level = kind == "foreign_version" and target.backend == "sql"
        assert_reported(outcomes, uid, schema_level=schema_level)
        assert raw.snapshot(uid) == damaged, "the damaged data was overwritten"
        tally.note = (tally.note + f" {kind}: {outcomes[0][1].split()[-1]};").strip()
