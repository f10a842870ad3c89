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
400 KB) is refused before anything is written. Records are written as the
canonical JSON text the core computed for them (``changes.*_texts``), never
encoded again.

A transaction cancelled because it collided with another in flight
(``TransactionConflict``) wrote nothing, so it is sent again here, a few
times (the core never repeats a save whose outcome it cannot know; this one
it can).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from triggers.errors import SessionLimitError, StaleSessionError, StorageError
from triggers.storage import SessionChanges
from triggers_dynamodb import expiry, leases, skew
from triggers_dynamodb.errors import (
    CONFLICT_ATTEMPTS,
    cancellation_codes,
    cancellation_reasons,
    pause_after_conflict,
)
from triggers_dynamodb.items import (
    EPOCH_ATTRIBUTE,
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
from triggers_dynamodb.loading import Seen, SessionView
from triggers_dynamodb.table import TTL_ATTRIBUTE

__all__ = ["Save", "build", "landed", "refusal", "save", "send", "unknown_outcome"]


def save(
    client: Any, table_name: str, changes: SessionChanges, view: SessionView, *,
    session_ttl: float | None, max_clock_skew: float | None,
) -> None:
    """Write ``changes`` over what ``view`` loaded: one transaction (after an expiry extension, if due)."""
    now = view.clock() if changes.written_at is None else changes.written_at
    free_before = None
    if changes.is_optimistic:
        # Other holders' leases are judged by this clock: it must be in bounds.
        if view.clocks is not None:
            skew.check(changes.uid, *view.clocks, max_clock_skew, refused="saving without the lock")
        free_before = now - skew.takeover_margin(max_clock_skew)
    prepared = build(table_name, changes, view.seen, now=now, session_ttl=session_ttl,
                     free_before=free_before)
    if prepared.extend_to is not None:
        expiry.extend(client, table_name, changes.uid, prepared.epoch, prepared.extend_to,
                      skip=prepared.written)
    send(client, changes, prepared, now=now, free_before=free_before)
    view.seen = prepared.seen


def send(client: Any, changes: SessionChanges, prepared: Save, *, now: float, free_before: float | None) -> None:
    """Send the transaction; a refusal of the header's condition is a StaleSessionError saying why."""
    for attempt in range(CONFLICT_ATTEMPTS):
        try:
            # botocore resends a request whose answer was lost with the
            # same token, which makes it idempotent: a transaction that
            # was applied is not applied again (nor refused as stale by
            # its own first attempt). A cancelled one is a new request.
            client.transact_write_items(TransactItems=prepared.actions, ClientRequestToken=uuid.uuid4().hex)
            return
        except Exception as error:
            codes = cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":  # the header's condition
                header = cancellation_reasons(error)[0].get("Item")
                if landed(prepared, header):
                    return  # botocore resent it after a lost answer; the first send landed
                if getattr(error, "response", {}).get("ResponseMetadata", {}).get("RetryAttempts"):
                    raise unknown_outcome(changes) from error
                raise refusal(changes, header, now=now, free_before=free_before) from error
            if not codes or "TransactionConflict" not in codes or attempt == CONFLICT_ATTEMPTS - 1:
                raise
            pause_after_conflict(attempt)


@dataclass(frozen=True)
class Save:
    """One save, ready to send."""

    actions: list[dict[str, Any]]
    """The transaction's items, the header update first."""
    token: str
    """This save's ``save_token`` in the header."""
    seen: Seen
    """What is known of the session once the save landed."""
    epoch: str
    extend_to: int | None
    """An expiry that every other item of the session must get before the save."""
    written: set[str]
    """Sort keys the save puts."""


@dataclass(frozen=True)
class _Where:
    """Which session, and the version, epoch and expiry every written item carries."""

    uid: str
    table_name: str
    version: int
    epoch: str
    expiry: expiry.Expiry
    token: str

    def record(self, kind: str, name: str, text: str) -> Item:
        return record_item(self.uid, kind, name, text, self.version, epoch=self.epoch,
                           expires_at=self.expiry.items)

    def tombstone(self, kind: str, name: str) -> Item:
        return tombstone_item(self.uid, kind, name, self.version, epoch=self.epoch,
                              expires_at=self.expiry.items)

    def key(self, sk: str) -> dict[str, Any]:
        return {"pk": {"S": self.uid}, "sk": {"S": sk}}


def build(
    table_name: str, changes: SessionChanges, seen: Seen, *, now: float, session_ttl: float | None,
    free_before: float | None,
) -> Save:
    """The transaction writing ``changes`` over ``seen`` (``free_before``: optimistic saves)."""
    fresh = seen.epoch is None or seen.expired
    epoch = uuid.uuid4().hex[:16] if fresh else seen.epoch
    assert epoch is not None
    expires = expiry.after_save(seen, fresh, session_ttl, now)
    where = _Where(changes.uid, table_name, changes.new_version, epoch, expires, uuid.uuid4().hex)
    places = {} if fresh else seen.places
    puts, moved = _puts(where, changes, places)
    _check_limits(changes.uid, puts)
    written = {item["sk"]["S"] for _, item in puts}
    actions = [{"Update": _header_update(where, changes, puts, seen, free_before)}]
    actions += [{"Put": {"TableName": table_name, "Item": item}} for _, item in puts]
    # Tombstones of earlier saves are no longer needed by any reader;
    # delete them while there is room in the transaction.
    tombstones = {} if fresh else seen.tombstones
    swept = [sk for sk in tombstones if sk not in written][: TRANSACTION_ITEMS - len(actions)]
    actions += [{"Delete": {"TableName": table_name, "Key": where.key(sk)}} for sk in swept]
    after = Seen(where.version, epoch, expires.session, expires.items, places={**places, **moved})
    after.tombstones = {sk: t for sk, t in tombstones.items() if sk not in swept}
    for _, item in puts:
        if "body" not in item:
            after.tombstones[item["sk"]["S"]] = parse_record_item(item)
    return Save(actions, where.token, after, epoch, expires.items if expires.extend else None, written)


def _puts(
    where: _Where, changes: SessionChanges, places: Mapping[str, str]
) -> tuple[list[tuple[str, Item]], dict[str, str]]:
    """(what, item) for every item the save puts, and where each changed instance now lives."""
    puts: list[tuple[str, Item]] = []
    moved: dict[str, str] = {}
    for row in changes.rows():
        name = row.name
        if row.kind == "task":
            puts.append((f"task {name!r}", where.record(Kind.CONFIG, name, row.text)))
        elif row.kind == "instance":
            place = Kind.ACTIVE if row.active else Kind.RESOLVED
            before = places.get(name)
            if before is not None and before != place:
                puts.append((f"instance {name!r}", where.tombstone(before, name)))
            puts.append((f"instance {name!r}", where.record(place, name, row.text)))
            moved[name] = place
        else:
            puts.append((f"metadata[{name!r}]", where.record(Kind.METADATA, name, row.text)))
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


_HEADER_NAMES = {**leases.NAMES, "#sx": "session_expires", "#ix": "items_expire", "#ttl": TTL_ATTRIBUTE}
"""Attribute names in the header's update and condition (some are DynamoDB reserved words)."""


def _header_update(
    where: _Where, changes: SessionChanges, puts: list[tuple[str, Item]], seen: Seen,
    free_before: float | None,
) -> dict[str, Any]:
    """The header's move to the new version, with the save's condition (see the module docstring)."""
    resolved = sum(1 for _, item in puts if item["sk"]["S"].startswith(Kind.RESOLVED))
    bind: dict[str, Any] = {
        ":new": {"N": str(where.version)},
        ":wa": {"N": str(len(puts) - resolved)},
        ":wr": {"N": str(resolved)},
        ":epoch": {"S": where.epoch},
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
    sets = ["#ver = :new", "wa = :wa", "wr = :wr", f"{EPOCH_ATTRIBUTE} = :epoch", "save_token = :saved"]
    removes = []
    # The header outlives its items in the table (not as a session), so
    # versions never restart while leftover items may still exist.
    expires = where.expiry
    for name, value in (("#sx", expires.session), ("#ix", expires.items), ("#ttl", expires.items)):
        if value is not None:
            grace = expiry.HEADER_GRACE_SECONDS if name == "#ttl" else 0
            sets.append(f"{name} = :{name[1:]}")
            bind[f":{name[1:]}"] = {"N": str(value + grace)}
        elif seen.expires is not None or seen.items_expire is not None:
            removes.append(name)  # the header seen had an expiry; nothing to remove otherwise
    update = "SET " + ", ".join(sets) + (" REMOVE " + ", ".join(removes) if removes else "")
    expression = update + condition
    names = {k: v for k, v in _HEADER_NAMES.items() if k in expression}  # DynamoDB refuses unused ones
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
    uid = changes.uid
    token = header.get("lease_token", {}).get("S")
    stored = number(header.get("version"))
    if changes.lease is not None and token != changes.lease.token:
        return StaleSessionError.lease_taken_over(uid)
    if stored != changes.base_version and changes.base_version is None:
        return StaleSessionError.created_elsewhere(uid)
    if stored != changes.base_version:
        return StaleSessionError.version_moved(uid, changes.base_version, stored)
    if token is not None and free_before is not None:
        expires = float(header["lease_expires"]["N"])
        return StaleSessionError.leased(uid, (
            f": its lease expires at {expires:.3f} by its holder's clock "
            f"({_ago(now - expires)} by this machine's), and counts as expired only "
            f"{now - free_before:g} s after that (twice max_clock_skew plus the Date "
            "header's resolution)"
        ))
    return StaleSessionError(  # pragma: no cover - the header changed between the condition and its answer
        f"session {uid!r}: the session header did not meet the save's condition; nothing was written"
    )


def _ago(seconds: float) -> str:
    return f"{seconds:.1f} s ago" if seconds >= 0 else f"in {-seconds:.1f} s"
