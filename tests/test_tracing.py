"""configure(): agenttrace joins a provider next to the exporters a team already has."""

from __future__ import annotations

from pathlib import Path

from conftest import query
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import agenttrace


def test_spans_go_to_the_existing_exporter_and_to_the_store(store: Path) -> None:
    provider = TracerProvider()
    backend = InMemorySpanExporter()  # stands for the team's OTLP exporter
    provider.add_span_processor(SimpleSpanProcessor(backend))

    assert agenttrace.configure(store, tracer_provider=provider) is provider
    with provider.get_tracer("t").start_as_current_span("work", attributes={"agenttrace.run.id": "both"}):
        pass
    provider.force_flush()

    assert [s.name for s in backend.get_finished_spans()] == ["work"]
    assert query(store, "SELECT run_id, name FROM spans") == [{"run_id": "both", "name": "work"}]
    provider.shutdown()


def test_configuring_twice_writes_each_span_once(store: Path) -> None:
    provider = TracerProvider()
    agenttrace.configure(store, tracer_provider=provider)
    agenttrace.configure(store, tracer_provider=provider)
    with provider.get_tracer("t").start_as_current_span("once", attributes={"agenttrace.run.id": "once"}):
        pass
    provider.shutdown()
    assert query(store, "SELECT count(*) AS n FROM raw_spans") == [{"n": 1}]


def test_reconfiguring_moves_later_spans_to_the_new_store(tmp_path: Path) -> None:
    provider = TracerProvider()
    tracer = provider.get_tracer("t")
    agenttrace.configure(tmp_path / "a", tracer_provider=provider)
    with tracer.start_as_current_span("first", attributes={"agenttrace.run.id": "r"}):
        pass
    agenttrace.configure(tmp_path / "b", tracer_provider=provider)
    with tracer.start_as_current_span("second", attributes={"agenttrace.run.id": "r"}):
        pass
    provider.shutdown()
    assert query(tmp_path / "a", "SELECT name FROM spans") == [{"name": "first"}]
    assert query(tmp_path / "b", "SELECT name FROM spans") == [{"name": "second"}]
