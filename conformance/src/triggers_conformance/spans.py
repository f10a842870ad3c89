"""The spans Triggers reports, recorded in memory, for tests that assert them.

Needs the OpenTelemetry SDK (``pip install opentelemetry-sdk``), imported when
:func:`recorded_spans` runs. Spans go to a tracer provider of the test's own,
given to :func:`triggers.observability.configure` for the block only.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from triggers import observability

__all__ = ["recorded_spans", "round_trips"]


@contextmanager
def recorded_spans() -> Iterator[Any]:
    """An ``InMemorySpanExporter`` holding every span Triggers finishes in the block."""
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    observability.configure(tracer_provider=provider)
    try:
        yield exporter
    finally:
        observability.configure(tracer_provider=None)


def round_trips(exporter: Any, name: str) -> list[Any]:
    """The ``triggers.round_trips`` of each finished span called ``name`` (None: not counted)."""
    return [(span.attributes or {}).get("triggers.round_trips")
            for span in exporter.get_finished_spans() if span.name == name]
