"""A save as one ``TransactWriteItems``: what it writes, its condition, and why it was refused.

The transaction updates the header from the loaded version to the next and
puts one item per changed config, instance and metadata key (``recentWrites``,
the tokens of the latest optimistic saves, included: it is metadata like any
other). An instance that resolves moves from ``I#`` to ``R#``: a put and a
tombstone. Tombstones loaded earlier are deleted while there is room.

The header update carries the condition, so the whole save is cancelled when
it fails:

* a save under the lock: ``lease_token = :mine AND version = :loaded``;
* an optimistic save (no lock): ``version = :loaded AND (no lease OR
  lease_expires <= :free)``, where ``:free`` is the writer's clock less
  :func:`.skew.takeover_margin`: a lease counts as expired only that long
  after the expiry its holder stamped, so an optimistic writer never writes
  while the lease may still be live on its holder's clock.

For a new session, ``version = :loaded`` is ``attribute_not_exists(version)``:
of two first writers, one wins. A refusal asks for the header as it was
(``ReturnValuesOnConditionCheckFailure``), so the error says why without a
further request.

The header also records ``save_token``, random per save. botocore resends a
request whose answer was lost; DynamoDB recognises a resent transaction by
its ``ClientRequestToken``, but a server that does not (moto) refuses it,
since the first send landed. The header it returns then carries this save's
token, which :func:`landed` recognises: the save is done, not refused. If
another save landed in between, the refusal of a resent request is reported
as a :class:`~triggers.errors.StorageError` whose outcome is unknown, never
as a refusal: an optimistic save is then looked up by its token among
``recentWrites`` rather than applied again.

A save that would not fit one transaction (100 items, 4 MB, or an item over
400 KB) is refused before anything is written.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triggers import values
from triggers.errors import SessionLimitError, StaleSessionError, StorageError
from triggers.storage import SessionChanges, is_active_record
from triggers_dynamodb import expiry, leases
from triggers_dynamodb.items import (
    HEADER_SK,
    ITEM_BYTES_LIMIT,
    TRANSACTION_BYTES,
    TRANSACTION_ITEMS,
    Item,
    Kind,
    item_bytes,
    number,
    parse_record_item,
    record_item,
    tombstone_item,
)
from triggers_dynamodb.loading import Seen
from triggers_dynamodb.table import TTL_ATTRIBUTE

__all__ = ["Save", "build", "landed", "refusal", "unknown_outcome"]


@dataclass(frozen=True)
class Save:
    """One save, ready to send."""

    actions: list[dict[str, Any]]
    """The transaction's items, the header update first."""
    token: str
    """This save's ``save_token`` in the header."""
    seen: Seen
    """What is known of the session once the save landed."""
    generation: str
    extend_to: int | None
    """An expiry that every other item of the session must get before the save."""
    written: set[str]
    """Sort keys the save puts."""


@dataclass(frozen=True)
class _Where:
    """Which session, and the version, generation and expiry every written item carries."""

    uid: str
    table_name: str
    version: int
    generation: str
    expires: int | None
    token: str

    def record(self, kind: str, name: str, body: values.JSONValue) -> Item:
        return record_item(self.uid, kind, name, body, self.version, generation=self.generation,
                           expires_at=self.expires)

    def tombstone(self, kind: str, name: str) -> Item:
        return tombstone_item(self.uid, kind, name, self.version, generation=self.generation,
                              expires_at=self.expires)

    def key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": self.uid}, "sk": {"S": sk}}


def build(
    table_name: str, changes: SessionChanges, seen: Seen, *, now: float, ttl: float | None,
    free_before: float | None,
) -> Save:
    """The transaction writing ``changes`` over ``seen`` (``free_before``: optimistic saves)."""
    fresh = seen.generation is None or seen.expired
    generation = uuid.uuid4().hex[:16] if fresh else seen.generation
    assert generation is not None
    expires, extend = expiry.after_save(seen, fresh, ttl, now)
    where = _Where(changes.uid, table_name, changes.new_version, generation, expires, uuid.uuid4().hex)
    places = {} if fresh else seen.places
    puts, moved = _puts(where, changes, places)
    _check_limits(changes.uid, puts)
    written = {item["sk"]["S"] for _, item in puts}
    actions = [{"Update": _header_update(where, changes, puts, free_before)}]
    actions += [{"Put": {"TableName": table_name, "Item": item}} for _, item in puts]
    # Tombstones of earlier saves are no longer needed by any reader;
    # delete them while there is room in the transaction.
    tombstones = {} if fresh else seen.tombstones
    swept = [sk for sk in tombstones if sk not in written][: TRANSACTION_ITEMS - len(actions)]
    actions += [{"Delete": {"TableName": table_name, "Key": where.key(sk)}} for sk in swept]
    after = Seen(where.version, generation, expires, places={**places, **moved})
    after.tombstones = {sk: t for sk, t in tombstones.items() if sk not in swept}
    for _, item in puts:
        if "body" not in item:
            after.tombstones[item["sk"]["S"]] = parse_record_item(item)
    return Save(actions, where.token, after, generation, expires if extend else None, written)


def _puts(
    where: _Where, changes: SessionChanges, places: Mapping[str, str]
) -> tuple[list[tuple[str, Item]], dict[str, str]]:
    """(what, item) for every item the save puts, and where each changed instance now lives."""
    puts: list[tuple[str, Item]] = []
    moved: dict[str, str] = {}
    for name, body in changes.configs.items():
        puts.append((f"task {name!r}", where.record(Kind.CONFIG, name, body)))
    for name, body in changes.instances.items():
        place = Kind.ACTIVE if is_active_record(body) else Kind.RESOLVED
        before = places.get(name)
        if before is not None and before != place:
            puts.append((f"instance {name!r}", where.tombstone(before, name)))
        puts.append((f"instance {name!r}", where.record(place, name, body)))
        moved[name] = place
    for key, value in changes.metadata.items():
        puts.append((f"metadata[{key!r}]", where.record(Kind.METADATA, key, value)))
    for key in changes.deleted_metadata:
        puts.append((f"metadata[{key!r}]", where.tombstone(Kind.METADATA, key)))
    return puts, moved


def _check_limits(uid: str, puts: list[tuple[str, Item]]) -> None:
    """Refuse, before writing anything, a save DynamoDB could not take whole."""
    total = 0
    for what, item in puts:
        size = item_bytes(item)
        if size > ITEM_BYTES_LIMIT:
            raise SessionLimitError(
                f"session {uid!r}: {what} takes {size} bytes as a DynamoDB item; "
                f"items hold at most {ITEM_BYTES_LIMIT}. Nothing was written"
            )
        total += size
    if len(puts) + 1 > TRANSACTION_ITEMS:
        raise SessionLimitError(
            f"session {uid!r}: this save writes {len(puts)} items; one DynamoDB "
            f"transaction holds the session header and at most {TRANSACTION_ITEMS - 1} more. "
            "Nothing was written: save in smaller steps (for example every 90 new instances)"
        )
    if total > TRANSACTION_BYTES:
        raise SessionLimitError(
            f"session {uid!r}: this save writes {total} bytes; one DynamoDB transaction "
            f"carries at most {TRANSACTION_BYTES}. Nothing was written: save in smaller steps"
        )


def _header_update(
    where: _Where, changes: SessionChanges, puts: list[tuple[str, Item]], free_before: float | None
) -> dict[str, Any]:
    """The header's move to the new version, with the save's condition (see the module docstring)."""
    resolved = sum(1 for _, item in puts if item["sk"]["S"].startswith(Kind.RESOLVED))
    bind: dict[str, Any] = {
        ":new": {"N": str(where.version)},
        ":wa": {"N": str(len(puts) - resolved)},
        ":wr": {"N": str(resolved)},
        ":gen": {"S": where.generation},
        ":saved": {"S": where.token},
    }
    if changes.base_version is None:
        condition = "attribute_not_exists(#ver)"
    else:
        condition = "#ver = :base"
        bind[":base"] = {"N": str(changes.base_version)}
    if changes.lease is not None:
        condition = f"#tok = :token AND {condition}"
        bind[":token"] = {"S": changes.lease.token}
    else:
        assert free_before is not None
        condition += f" AND {leases.FREE}"
        bind[":free"] = {"N": repr(free_before)}
    update = "SET #ver = :new, wa = :wa, wr = :wr, g = :gen, save_token = :saved"
    if where.expires is None:
        update += " REMOVE #sx, #ttl"
    else:
        # The header outlives its items in the table (not as a session),
        # so versions never restart while leftover items may still exist.
        update += ", #sx = :expires, #ttl = :deleted"
        bind[":expires"] = {"N": str(where.expires)}
        bind[":deleted"] = {"N": str(where.expires + expiry.HEADER_GRACE_SECONDS)}
    names = {**leases.NAMES, "#sx": "session_expires", "#ttl": TTL_ATTRIBUTE}
    if changes.lease is not None:
        del names["#exp"]  # DynamoDB refuses names that the expressions do not use
    return {
        "TableName": where.table_name,
        "Key": where.key(HEADER_SK),
        "UpdateExpression": update,
        "ConditionExpression": condition,
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": bind,
        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
    }


def landed(save: Save, header: Mapping[str, Any] | None) -> bool:
    """Whether a refused transaction had landed before: a resend of this very save."""
    token: str | None = (header or {}).get("save_token", {}).get("S")
    return token == save.token


def unknown_outcome(changes: SessionChanges) -> StorageError:
    """A resent save refused, after an earlier send whose answer was lost."""
    return StorageError(
        f"session {changes.uid!r}: a save was sent again after its answer was lost, and refused; "
        "the first send may have been written"
    )


def refusal(
    changes: SessionChanges, header: Mapping[str, Any] | None, *, now: float, free_before: float | None
) -> StaleSessionError:
    """Why the header's condition refused a save, from the header as it was."""
    header = header or {}
    token = header.get("lease_token", {}).get("S")
    stored = number(header.get("version"))
    if changes.lease is not None and token != changes.lease.token:
        reason = "the lease was taken over by another holder"
    elif stored != changes.base_version and changes.base_version is None:
        reason = f"another writer created the session first (stored version {stored})"
    elif stored != changes.base_version:
        reason = f"the stored version is {stored}, this writer loaded {changes.base_version}"
    elif token is not None and free_before is not None:
        expires = float(header["lease_expires"]["N"])
        reason = (
            f"a lock holder's lease is live: it expires at {expires:.3f} by its holder's clock "
            f"({_ago(now - expires)} by this machine's), and counts as expired only "
            f"{now - free_before:g} s after that (twice max_clock_skew plus the Date "
            "header's resolution), so this save without the lock was refused"
        )
    else:  # pragma: no cover - the header changed between the condition and its answer
        reason = "the session header did not meet the save's condition"
    return StaleSessionError(f"session {changes.uid!r}: {reason}; nothing was written")


def _ago(seconds: float) -> str:
    return f"{seconds:.1f} s ago" if seconds >= 0 else f"in {-seconds:.1f} s"
