"""What a storage backend promises, declared as data.

A backend class sets ``capabilities = Capabilities(...)``. The conformance
suite reads it: tests of a guarantee the backend does not claim are skipped
with that reason, and the run ends with a report of what was claimed and
passed. The defaults describe the weakest honest backend: one that keeps
state where other processes may or may not see it, locks only within its own
process, and rewrites the whole session on every save.
"""

from __future__ import annotations

from dataclasses import dataclass, fields

__all__ = ["Capabilities"]


@dataclass(frozen=True)
class Capabilities:
    """Guarantees and limits of a storage backend.

    Guarantees (``False`` unless the backend claims them):

    ``shared_state``
        Other processes (and machines, where the store is networked) see the
        sessions this process saves. The in-memory backend does not.
    ``cross_process_locking``
        ``acquire_lock()`` excludes holders in other processes and machines,
        not just other threads of this process.
    ``fenced_saves``
        The *store* refuses a save from a holder whose lease was taken over,
        even if that holder's own clock says its lease is still valid (a
        paused process). Without it, only the holder's local expiry check
        stands between a stale holder and the store.
    ``skew_safe_leases``
        Mutual exclusion does not depend on the processes' clocks agreeing: the
        store judges lease expiry by its own clock (SQL ``now()``, MongoDB
        ``$$NOW``, a cache server's key expiry), or the backend measures the
        skew against the store and refuses the lock (``ClockSkewError``) beyond
        a bound it documents. Without it, a process whose clock runs ahead by
        more than the lease takes live leases as expired.
    ``optimistic_saves``
        ``_save_changes`` also takes an optimistic change set
        (``changes.lease is None``): in the same atomic write it checks that
        the stored version is still ``changes.base_version`` *and* that no
        live lease is held, and raises :class:`~triggers.errors.StaleSessionError`
        otherwise. :meth:`~triggers.storage.TriggerStorageBackend.transact`
        (which every manager operation uses) then applies a change with one
        load and one conditional write, no lease taken. Without it,
        ``transact`` takes the lock around the change instead.
    ``incremental_saves``
        A save writes only the records that changed since the load.
    ``partial_loads``
        A fire loads only the active (unresolved) instances, not the history.
    ``ttl``
        Sessions can expire after a configured time.

    Limits (``None``: no limit the suite needs to probe):

    ``max_uid_length``
        Longest uid, in characters; longer ones are refused with a
        ``ValueError`` naming the uid.
    ``max_record_bytes``
        Largest stored task instance, task config or session metadata value
        (each a record of its own on most stores), counted as UTF-8 bytes of
        its canonical JSON (see :func:`triggers.values.canonical_json`).
    ``max_session_bytes``
        Largest whole session, counted the same way over all its records. The
        base class checks it only when the whole session is loaded; a backend
        with ``partial_loads`` that declares it must enforce it in
        ``_save_changes`` (raising :class:`~triggers.errors.SessionLimitError`
        before writing).
    ``min_lease_seconds``
        Shortest lease the store honours (memcached expiry has one-second
        granularity, for instance). Tests never use a shorter lease.
    """

    shared_state: bool = False
    cross_process_locking: bool = False
    fenced_saves: bool = False
    skew_safe_leases: bool = False
    optimistic_saves: bool = False
    incremental_saves: bool = False
    partial_loads: bool = False
    ttl: bool = False
    max_uid_length: int | None = None
    max_record_bytes: int | None = None
    max_session_bytes: int | None = None
    min_lease_seconds: float = 0.0

    @classmethod
    def guarantee_names(cls) -> tuple[str, ...]:
        """Names of the boolean guarantees, in declaration order."""
        return tuple(f.name for f in fields(cls) if f.type in ("bool", bool))
