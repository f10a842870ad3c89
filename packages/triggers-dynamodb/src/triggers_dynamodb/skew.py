"""Clock skew against DynamoDB: measured from every lease call, bounded, refused beyond.

DynamoDB has no clock a condition expression can read, so a lease's expiry is
stamped and judged by the callers' clocks. Two machines whose clocks disagree
by more than a lease would break mutual exclusion: one running ahead takes a
live lease as expired, one running behind writes a lease that others take at
once. This module turns that into a bounded, checked requirement:

* **Detect.** Every answer DynamoDB sends carries an HTTP ``Date`` header, the
  service's clock to the second. Each attempt to take a lease compares it with
  the caller's clock right after the answer; a caller off by more than
  ``max_clock_skew`` (give or take the header's one-second resolution) is
  refused with :class:`~triggers.errors.ClockSkewError` and leaves no lease
  behind. A save without the lock (optimistic) judges other holders' leases
  by the writer's clock too, so it is checked the same way, against the
  answer of the load it is based on (no request of its own), and refused
  before anything is sent.
* **Bound.** Every caller that is not refused is within ``max_clock_skew +
  DATE_RESOLUTION`` of DynamoDB, so any two are within twice that. A lease
  counts as expired only :func:`takeover_margin` seconds after the expiry
  stamped in it, which covers two such clocks erring in opposite directions:
  neither a new holder nor an optimistic writer acts while the lease may
  still be live on its holder's clock. The cost is that a crashed holder's
  lease is taken over (and optimistic writers wait) that much longer.
"""

from __future__ import annotations

from collections.abc import Mapping
from email.utils import parsedate_to_datetime
from typing import Any

from triggers.errors import ClockSkewError, ConfigurationError

__all__ = [
    "DATE_RESOLUTION",
    "DEFAULT_MAX_CLOCK_SKEW",
    "check",
    "server_time",
    "takeover_margin",
    "validated_bound",
]

DEFAULT_MAX_CLOCK_SKEW = 1.0
"""Seconds a caller's clock may differ from DynamoDB's by default (NTP keeps
machines within milliseconds; a clock that is off by a second is broken)."""

DATE_RESOLUTION = 1.25
"""Seconds by which one ``Date`` header can misstate the offset: the header
truncates to the second, plus a quarter second for the answer's travel."""


def validated_bound(value: object) -> float | None:
    """``max_clock_skew`` as given: seconds >= 0, or ``None`` to turn the check off."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value < float("inf"):
        raise ConfigurationError(
            f"max_clock_skew must be a number of seconds >= 0 (or None to turn the clock "
            f"check off), not {value!r}"
        )
    return float(value)


def takeover_margin(bound: float | None) -> float:
    """Seconds past its stamped expiry after which another caller may take a lease."""
    return 0.0 if bound is None else 2 * (bound + DATE_RESOLUTION)


def server_time(response: Mapping[str, Any] | None) -> float | None:
    """DynamoDB's clock (seconds since the epoch) from a boto3 response or error response."""
    if not response:
        return None
    headers = response.get("ResponseMetadata", {}).get("HTTPHeaders", {})
    date = headers.get("date")
    if not isinstance(date, str):
        return None
    try:
        return parsedate_to_datetime(date).timestamp()
    except (TypeError, ValueError):
        return None


def check(
    uid: str, local_now: float, store_now: float | None, bound: float | None,
    *, refused: str = "taking the lock",
) -> None:
    """Raise :class:`ClockSkewError` if ``local_now`` is off by more than ``bound``.

    ``store_now`` is truncated to the second, so the caller's true offset lies
    between ``offset - DATE_RESOLUTION`` and ``offset``; only an offset that
    is out of bounds at both ends is refused. ``refused`` names what was
    refused, for the message.
    """
    if bound is None or store_now is None:
        return
    offset = local_now - store_now
    if offset - DATE_RESOLUTION > bound or offset < -bound:
        direction = "ahead of" if offset > 0 else "behind"
        raise ClockSkewError(
            f"session {uid!r}: this machine's clock is about {abs(offset):.0f} s {direction} "
            f"DynamoDB's (allowed: {bound:g} s, option max_clock_skew); {refused} was "
            "refused so that no other holder's lease is taken for expired early. Nothing was "
            "written; synchronise the clock (NTP) and try again"
        )
