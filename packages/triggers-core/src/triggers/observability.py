"""What a fire, a load, a save, a lock wait and a task run cost, for production.

Three outlets, all optional and cheap when unused:

* **OpenTelemetry spans** (``pip install 'triggers-core[otel]'``):
  ``triggers.fire``, ``triggers.load``, ``triggers.save``,
  ``triggers.lock_wait`` and ``triggers.task``, with the attributes in
  :data:`ATTRIBUTES`. Spans go to the global tracer provider, or to the one
  given to :func:`configure`. Without ``opentelemetry-api`` installed every
  span is a no-op.
* **A metrics hook**: :func:`add_metrics_hook` registers a callable that is
  called as ``hook(name, value, attributes)`` for each measurement in
  :data:`METRICS` (lock wait seconds and conflicts, timeouts, stale refusals, save bytes).
  Forward them to Prometheus, StatsD or OpenTelemetry metrics as you like.
* **Logging**: the library logs under ``triggers`` (a ``NullHandler`` is
  installed there, so nothing prints unless the application configures
  logging).

Sessions are named in spans by a hash of the uid (``triggers.session``), not
by the uid itself: uids often carry user or order ids that do not belong in a
tracing backend.
"""

from __future__ import annotations

import functools
import hashlib
import logging
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token
from types import TracebackType
from typing import Any

__all__ = [
    "ATTRIBUTES",
    "METRICS",
    "MetricsHook",
    "add_metrics_hook",
    "configure",
    "count_round_trip",
    "counting_round_trips",
    "record",
    "remove_metrics_hook",
    "session_attributes",
    "span",
    "uid_hash",
    "wants_metrics",
]

logger = logging.getLogger(__name__)

ATTRIBUTES = {
    "triggers.backend": "the storage backend's class name",
    "triggers.session": "the first 16 hex digits of the SHA-256 of the session uid",
    "triggers.trigger": "the trigger fired (triggers.fire)",
    "triggers.instance": "the task instance (triggers.task)",
    "triggers.attempt": "1 for a task's first run, 2 after one retry... (triggers.task)",
    "triggers.attempts": "how many times the lease was tried for (triggers.lock_wait), or the change applied and saved (triggers.transaction)",
    "triggers.scope": "how much a load read: active or full (triggers.load)",
    "triggers.outcome": "finished, failed, retry (triggers.task); saved, stale (triggers.save)",
    "triggers.round_trips": "requests the backend sent to its store (triggers.load, triggers.save, "
                            "triggers.lock_wait), on backends that count them (count_round_trip)",
}
"""The span attributes, by name."""

METRICS = {
    "triggers.lock_wait_seconds": "seconds acquire_lock() waited for the lease",
    "triggers.stale_refusals": "1 for each save the store refused as stale",
    "triggers.save_bytes": "bytes of the records a save wrote (canonical JSON)",
    "triggers.lock_timeouts": "1 for each acquire_lock() that gave up",
    "triggers.lock_conflicts": "tries of one acquire_lock() that found the lease held by another",
    "triggers.write_conflicts": "optimistic saves of one transact() refused because another wrote first or held the lease",
    "triggers.contention_timeouts": "1 for each transact() that gave up after its bounded wait",
}
"""The measurements passed to metrics hooks, by name."""

MetricsHook = Callable[[str, float, Mapping[str, str]], None]
"""``hook(name, value, attributes)``; must be fast and must not raise."""

_hooks: list[MetricsHook] = []
_hooks_mutex = threading.Lock()
_tracer_provider: Any = None


def configure(*, tracer_provider: Any = None) -> None:
    """Send spans to ``tracer_provider`` instead of OpenTelemetry's global one (``None``: global)."""
    global _tracer_provider
    _tracer_provider = tracer_provider


def add_metrics_hook(hook: MetricsHook) -> None:
    """Call ``hook`` for every measurement of :data:`METRICS` from now on."""
    with _hooks_mutex:
        _hooks.append(hook)


def remove_metrics_hook(hook: MetricsHook) -> None:
    """Stop calling ``hook`` (registered by :func:`add_metrics_hook`)."""
    with _hooks_mutex:
        if hook in _hooks:
            _hooks.remove(hook)


def wants_metrics() -> bool:
    """True if a hook is registered (so a measurement that costs work is worth making)."""
    return bool(_hooks)


def record(name: str, value: float, attributes: Mapping[str, str]) -> None:
    """Hand one measurement to every hook; a failing hook is logged, never raised."""
    for hook in list(_hooks):
        try:
            hook(name, value, attributes)
        except Exception:
            logger.exception("metrics hook %r failed on %s", hook, name)


@functools.lru_cache(maxsize=1024)
def uid_hash(uid: str) -> str:
    """What spans and metrics call a session: a stable hash, not the uid itself.

    Remembered for the most recent uids: a fire names its session in several
    spans, and hashing it each time was a measurable part of a fire's cost.
    """
    return hashlib.sha256(uid.encode("utf-8")).hexdigest()[:16]


def session_attributes(backend: object, uid: str) -> dict[str, str]:
    """The attributes naming a session of ``backend``."""
    return {"triggers.backend": type(backend).__name__, "triggers.session": uid_hash(uid)}


class _NoSpan:
    """Stands in for a span when OpenTelemetry is not installed."""

    def set_attribute(self, key: str, value: Any) -> None:
        """Ignore the attribute."""


@functools.cache
def _trace_api() -> Any:
    """OpenTelemetry's trace API, or None when it is not installed (looked up once)."""
    try:
        from opentelemetry import trace
    except ImportError:
        return None
    return trace


_cached_tracer: tuple[Any, Any] | None = None
"""``(provider, tracer)``: the tracer last made, and the :func:`configure`d
provider (``None``: the global one) it was made for."""


def _tracer() -> Any:
    """The tracer for the provider in use, made once per provider.

    ``get_tracer`` builds a tracer on every call, which cost about as much as
    the no-op span itself. One made for the global provider before the
    application set one is OpenTelemetry's proxy, which turns to the real
    provider as soon as it is set, so keeping it loses no span.
    """
    global _cached_tracer
    trace = _trace_api()
    if trace is None:
        return None
    provider = _tracer_provider
    cached = _cached_tracer
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = trace.get_tracer("triggers", tracer_provider=provider)
    _cached_tracer = (provider, tracer)
    return tracer


def span(name: str, attributes: Mapping[str, Any]) -> AbstractContextManager[Any]:
    """A span named ``name`` around the block (a no-op without OpenTelemetry).

    An exception leaving the block is recorded on the span and marks it as
    an error: this is OpenTelemetry's own context manager, returned as it is
    (wrapping it in a generator of ours cost a fire about 5% more).
    """
    tracer = _tracer()
    if tracer is None:
        return nullcontext(_NoSpan())
    current: AbstractContextManager[Any] = tracer.start_as_current_span(name, attributes=dict(attributes))
    return current


# ----------------------------------------------------------------------
# Round trips: counted by the backend, reported on the span
# ----------------------------------------------------------------------

_round_trips: ContextVar[list[int] | None] = ContextVar("triggers_round_trips", default=None)
"""The counter of the span being counted in this thread or task, if any."""

_NOT_COUNTING = nullcontext()


def count_round_trip(requests: int = 1) -> None:
    """Called by a backend for each request it sends its store (a statement, a
    command, an HTTP request), so that the load, save or lock-wait span around
    it reports ``triggers.round_trips``. Costs one context-variable read when
    nobody is counting; a backend that never calls it reports no such attribute.
    """
    counter = _round_trips.get()
    if counter is not None:
        counter[0] += requests


def counting_round_trips(span: Any) -> AbstractContextManager[Any]:
    """Count the round trips of the block onto ``span`` (if it records at all)."""
    recording = getattr(span, "is_recording", None)
    if recording is None or not recording():
        return _NOT_COUNTING
    return _RoundTrips(span)


class _RoundTrips:
    """A class, not a generator: this wraps every load and save of a traced process."""

    __slots__ = ("counter", "span", "token")

    def __init__(self, span: Any) -> None:
        self.span = span
        self.counter = [0]
        self.token: Token[list[int] | None] | None = None

    def __enter__(self) -> None:
        self.token = _round_trips.set(self.counter)

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self.token is not None:
            _round_trips.reset(self.token)
        if self.counter[0]:
            self.span.set_attribute("triggers.round_trips", self.counter[0])
