"""Spans, metrics and logging of fires, loads, saves, lock waits and task runs."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator, Mapping
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

from triggers import observability
from triggers.errors import ContentionError, LockTimeoutError, RetryTask, StaleSessionError
from triggers.manager import TriggerManager
from triggers.memory import MemoryStorageBackend
from triggers.tasks import TaskContext
from triggers_conformance.spans import recorded_spans

UID = "order-1234 of alice@example.com"


def retry_once(context: TaskContext) -> None:
    """Ask to be run again the first time."""
    if not context.task_instance.metadata.get("retries"):
        raise RetryTask("not yet", max_retries=1)


def succeed(context: TaskContext) -> dict[str, Any]:
    return {"ok": True}


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    with recorded_spans() as exporter:
        yield exporter


@pytest.fixture
def measurements() -> Iterator[list[tuple[str, float, Mapping[str, str]]]]:
    seen: list[tuple[str, float, Mapping[str, str]]] = []

    def hook(name: str, value: float, attributes: Mapping[str, str]) -> None:
        seen.append((name, value, attributes))

    observability.add_metrics_hook(hook)
    try:
        yield seen
    finally:
        observability.remove_metrics_hook(hook)


def _storage(uid: str = UID) -> MemoryStorageBackend:
    # A namespace of its own for each call: not id(object()), which CPython
    # reuses as soon as the object is freed, so that two tests could share a
    # session (and a save find nothing to write).
    return MemoryStorageBackend(uid, namespace=f"observability-{uuid.uuid4().hex}")


def test_a_fire_makes_nested_spans_that_name_the_session_by_hash(spans: InMemorySpanExporter) -> None:
    storage = _storage()
    manager = TriggerManager(storage)
    manager.update_configuration({"t_ok": {"after": ["go"], "run": f"{__name__}.succeed"}})
    spans.clear()
    manager.fire("go")
    finished = spans.get_finished_spans()
    names = [span.name for span in finished]
    # The memory backend saves optimistically: a transaction, not a lock wait.
    assert {"triggers.fire", "triggers.transaction", "triggers.load", "triggers.save",
            "triggers.task"} <= set(names)
    assert "triggers.lock_wait" not in names
    fire = next(span for span in finished if span.name == "triggers.fire")
    assert fire.attributes is not None
    assert fire.attributes["triggers.trigger"] == "go"
    assert fire.attributes["triggers.backend"] == "MemoryStorageBackend"
    assert fire.attributes["triggers.session"] == observability.uid_hash(UID)
    for span in finished:  # the uid itself never leaves the process
        assert UID not in str(dict(span.attributes or {}))
        if span is not fire:
            assert span.context is not None and fire.context is not None
            assert span.context.trace_id == fire.context.trace_id
    task = next(span for span in finished if span.name == "triggers.task")
    assert task.attributes is not None
    assert task.attributes["triggers.instance"] == "t_ok#0"
    assert task.attributes["triggers.attempt"] == 1
    assert task.attributes["triggers.outcome"] == "finished"
    load = next(span for span in finished if span.name == "triggers.load")
    assert load.attributes is not None and load.attributes["triggers.scope"] == "active"


def test_a_retried_task_reports_its_attempts(spans: InMemorySpanExporter) -> None:
    storage = _storage()
    manager = TriggerManager(storage)
    manager.update_configuration({"t_retry": {"after": ["go"], "run": f"{__name__}.retry_once"}})
    spans.clear()
    manager.fire("go")
    manager.resume()
    tasks = [span for span in spans.get_finished_spans() if span.name == "triggers.task"]
    attempts = [(span.attributes or {}).get("triggers.attempt") for span in tasks]
    outcomes = [(span.attributes or {}).get("triggers.outcome") for span in tasks]
    assert attempts == [1, 2] and outcomes == ["retry", "finished"]


def test_metrics_hooks_get_lock_waits_save_bytes_and_stale_refusals(
    measurements: list[tuple[str, float, Mapping[str, str]]],
) -> None:
    storage = _storage()
    manager = TriggerManager(storage)
    manager.update_configuration({"t_ok": {"after": ["go"], "run": f"{__name__}.succeed"}})
    assert ("triggers.write_conflicts", 0) in [(name, value) for name, value, _ in measurements]
    saved = [value for name, value, _ in measurements if name == "triggers.save_bytes"]
    assert saved and all(value > 0 for value in saved)
    assert all(attributes["triggers.session"] == observability.uid_hash(UID)
               for _, _, attributes in measurements)

    measurements.clear()
    holder = MemoryStorageBackend(UID, namespace=storage.namespace, lock_timeout=0)
    waiter = MemoryStorageBackend(UID, namespace=storage.namespace)
    with holder.acquire_lock():
        with pytest.raises(LockTimeoutError), waiter.acquire_lock(timeout=0):
            pass
        assert "triggers.lock_wait_seconds" in [name for name, _, _ in measurements]
        # An optimistic writer meets the lease and gives up: a conflict and a timeout.
        with pytest.raises(ContentionError):
            waiter.transact(lambda: waiter.metadata.update(x=1), timeout=0)
    assert ("triggers.lock_timeouts", 1) in [(name, value) for name, value, _ in measurements]
    assert ("triggers.write_conflicts", 1) in [(name, value) for name, value, _ in measurements]
    assert ("triggers.contention_timeouts", 1) in [(name, value) for name, value, _ in measurements]

    measurements.clear()
    now = [1000.0]
    paused = MemoryStorageBackend(UID, namespace=storage.namespace, lease_ttl=5, clock=lambda: now[0])
    # The next holder's clock says the paused holder's lease ran out long ago.
    successor = MemoryStorageBackend(UID, namespace=storage.namespace, lease_ttl=5,
                                     clock=lambda: now[0] + 100)
    with paused.acquire_lock():
        paused.metadata["from the paused holder"] = True
        with successor.acquire_lock():
            successor.metadata["from the successor"] = True
            successor.save()
        with pytest.raises(StaleSessionError):
            paused.save()
    assert ("triggers.stale_refusals", 1) in [(name, value) for name, value, _ in measurements]


def test_a_failing_hook_is_logged_and_never_breaks_a_fire(caplog: pytest.LogCaptureFixture) -> None:
    def broken(name: str, value: float, attributes: Mapping[str, str]) -> None:
        raise RuntimeError("the metrics system is down")

    observability.add_metrics_hook(broken)
    try:
        storage = _storage()
        manager = TriggerManager(storage)
        with caplog.at_level(logging.ERROR, logger="triggers.observability"):
            manager.update_configuration({"t_ok": {"after": ["go"], "run": f"{__name__}.succeed"}})
            manager.fire("go")
        assert storage["t_ok#0"].status.value == "finished"
        assert "the metrics system is down" in caplog.text
    finally:
        observability.remove_metrics_hook(broken)


def test_the_library_logger_has_a_null_handler() -> None:
    assert any(isinstance(h, logging.NullHandler) for h in logging.getLogger("triggers").handlers)


def test_lock_waits_count_their_tries_and_the_conflicts_among_them(
    spans: InMemorySpanExporter, measurements: list[tuple[str, float, Mapping[str, str]]],
) -> None:
    namespace = f"observability-{uuid.uuid4().hex}"
    holder = MemoryStorageBackend(UID, namespace=namespace)
    waiter = MemoryStorageBackend(UID, namespace=namespace)
    with holder.acquire_lock():
        pass
    conflicts = [value for name, value, _ in measurements if name == "triggers.lock_conflicts"]
    assert conflicts == [0]

    measurements.clear()
    spans.clear()
    with holder.acquire_lock(), pytest.raises(LockTimeoutError), waiter.acquire_lock(timeout=0.05):
        pass
    conflicts = [value for name, value, _ in measurements if name == "triggers.lock_conflicts"]
    waits = [span for span in spans.get_finished_spans() if span.name == "triggers.lock_wait"]
    tries = [(span.attributes or {}).get("triggers.attempts") for span in waits]
    # The holder's free take (1 try, no conflict), then the waiter's tries, all refused.
    assert conflicts[0] == 0 and conflicts[1] >= 2
    assert tries[0] == 1 and tries[1] == conflicts[1]


def test_spans_follow_the_provider_configured_at_the_time() -> None:
    """The tracer is made once per provider, so configuring another one must
    send the next spans there, and back."""
    exporters = [InMemorySpanExporter(), InMemorySpanExporter()]
    providers = []
    for exporter in exporters:
        provider = TracerProvider()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
        providers.append(provider)
    try:
        for provider, span_name in [(providers[0], "first"), (providers[1], "second"), (providers[0], "third")]:
            observability.configure(tracer_provider=provider)
            with observability.span(span_name, {"triggers.session": observability.uid_hash(UID)}):
                pass
    finally:
        observability.configure(tracer_provider=None)
    assert [span.name for span in exporters[0].get_finished_spans()] == ["first", "third"]
    assert [span.name for span in exporters[1].get_finished_spans()] == ["second"]


def test_uid_hash_is_the_same_every_time() -> None:
    first = observability.uid_hash("order-1 of bob")
    assert observability.uid_hash("order-1 of bob") == first
    assert len(first) == 16 and first != observability.uid_hash("order-2 of bob")


def test_an_exception_leaving_a_span_is_recorded_and_marks_it_an_error(spans: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError, match="boom"), observability.span("triggers.save", {"a": "b"}) as span:
        span.set_attribute("triggers.outcome", "saved")
        raise ValueError("boom")
    (finished,) = spans.get_finished_spans()
    assert finished.status.status_code is StatusCode.ERROR
    assert [event.name for event in finished.events] == ["exception"]
    assert finished.attributes is not None
    assert finished.attributes["a"] == "b" and finished.attributes["triggers.outcome"] == "saved"


def test_without_opentelemetry_a_span_is_a_no_op(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(observability, "_trace_api", lambda: None)
    with observability.span("triggers.fire", {}) as span:
        span.set_attribute("triggers.outcome", "ignored")
    with pytest.raises(KeyError), observability.span("triggers.fire", {}):
        raise KeyError("passes through")


class _CountingMemory(MemoryStorageBackend):
    """Counts one request per load and two per save, as a backend with a store would."""

    def _load_session(self, scope: Any) -> Any:
        observability.count_round_trip()
        return super()._load_session(scope)

    def _save_changes(self, changes: Any) -> None:
        observability.count_round_trip(2)
        super()._save_changes(changes)


def test_loads_and_saves_report_the_round_trips_their_backend_counts(
    spans: InMemorySpanExporter,
) -> None:
    storage = _CountingMemory(UID, namespace=f"observability-{uuid.uuid4().hex}")
    TriggerManager(storage).update_configuration({"t": {"after": ["go"], "run": f"{__name__}.succeed"}})
    spans.clear()
    TriggerManager(storage).fire("go")
    finished = spans.get_finished_spans()
    trips = {span.name: [s.attributes.get("triggers.round_trips") for s in finished
                         if s.name == span.name] for span in finished}
    assert trips["triggers.load"] and set(trips["triggers.load"]) == {1}
    assert trips["triggers.save"] and set(trips["triggers.save"]) == {2}
    assert set(trips["triggers.fire"]) == {None}  # counted where the requests are sent
    # A backend that counts nothing reports no such attribute.
    spans.clear()
    plain = _storage()
    TriggerManager(plain).update_configuration({"t": {"after": ["go"], "run": f"{__name__}.succeed"}})
    assert all("triggers.round_trips" not in (span.attributes or {})
               for span in spans.get_finished_spans())


def test_counting_round_trips_without_a_span_costs_nothing_and_counts_nothing() -> None:
    observability.count_round_trip()  # nobody counting: no error, no effect
    with observability.counting_round_trips(None):
        observability.count_round_trip()
