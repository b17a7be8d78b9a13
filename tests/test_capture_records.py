"""records.spans_to_batch: real SDK spans to Arrow rows, checked against a plain span-by-span reference.

The conversion reads whole columns at once and shares work between spans (by object identity, cached
offsets, repeated values); the reference below says what each row must hold, one span at a time, in
the most obvious way. Every test compares the two on spans made by the real OpenTelemetry SDK.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry import trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Link, SpanContext, SpanKind, Status, StatusCode, TraceFlags
from opentelemetry.trace.span import TraceState

from agenttrace.capture import active_runs
from agenttrace.capture.records import END, START, spans_to_batch
from agenttrace.ids import is_safe_run_id
from agenttrace.store.schema import EVENT, SPAN_SCHEMA

KINDS = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}


def as_string(value: Any) -> str:
    """The store's attribute values: ClickHouse's AsString()."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return json.dumps(list(value), default=str, ensure_ascii=False)


def as_map(attributes: Any) -> list[tuple[str, str]]:
    return [(k, as_string(v)) for k, v in dict(attributes or {}).items()]


def reference_row(span: ReadableSpan, record_type: str) -> dict[str, Any]:
    """One span's row, written out field by field."""
    ctx = span.context
    assert ctx is not None
    resource = dict(span.resource.attributes)
    attributes = dict(span.attributes or {})
    run_id = next(
        (
            r
            for r in (attributes.get("agenttrace.run.id"), resource.get("agenttrace.run.id"))
            if isinstance(r, str) and is_safe_run_id(r)
        ),
        None,
    )
    scope = span.instrumentation_scope
    ended = record_type == END
    start = span.start_time or 0
    return {
        "Timestamp": start,
        "TraceId": f"{ctx.trace_id:032x}",
        "SpanId": f"{ctx.span_id:016x}",
        "ParentSpanId": f"{span.parent.span_id:016x}" if span.parent else "",
        "TraceState": ctx.trace_state.to_header() if ctx.trace_state else "",
        "SpanName": span.name,
        "SpanKind": KINDS[span.kind],
        "ServiceName": str(resource.get("service.name", "")),
        "ResourceAttributes": as_map(resource),
        "ScopeName": scope.name if scope else "",
        "ScopeVersion": (scope.version or "") if scope else "",
        "SpanAttributes": as_map(attributes),
        "Duration": max(0, (span.end_time or start) - start) if ended else None,
        "StatusCode": {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}[
            span.status.status_code
        ]
        if ended
        else "Unset",
        "StatusMessage": (span.status.description or "") if ended else "",
        "Events": [
            {"Timestamp": e.timestamp, "Name": e.name, "Attributes": as_map(e.attributes)}
            for e in span.events
        ],
        "Links": [
            {
                "TraceId": f"{link.context.trace_id:032x}",
                "SpanId": f"{link.context.span_id:016x}",
                "TraceState": link.context.trace_state.to_header() if link.context.trace_state else "",
                "Attributes": as_map(link.attributes),
            }
            for link in span.links
        ],
        "RunId": run_id or active_runs.run_for_trace(ctx.trace_id) or f"{ctx.trace_id:032x}",
        "RecordType": record_type,
    }


def rows(batch: pa.RecordBatch) -> list[dict[str, Any]]:
    """The batch's rows, timestamps as integer ns (as the SDK has them)."""
    assert batch.schema == SPAN_SCHEMA
    batch.validate(full=True)
    event = pa.struct([("Timestamp", pa.int64()), ("Name", pa.string()), ("Attributes", EVENT.field(2).type)])
    as_ints = pa.schema(
        [
            f.with_type(pa.int64())
            if f.name == "Timestamp"
            else f.with_type(pa.list_(event))
            if f.name == "Events"
            else f
            for f in SPAN_SCHEMA
        ]
    )
    return batch.cast(as_ints).to_pylist()


def compare(spans: list[ReadableSpan], record_type: str = END) -> None:
    assert rows(spans_to_batch(spans, record_type)) == [reference_row(span, record_type) for span in spans]


class Recorder:
    """A provider whose ended spans are kept in memory (the SDK's objects, as an exporter gets them)."""

    def __init__(self, resource: Resource | None = None) -> None:
        self.exporter = InMemorySpanExporter()
        self.provider = TracerProvider(resource=resource or Resource.create({"service.name": "svc"}))
        self.provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def tracer(self, name: str = "scope", version: str | None = "1.0") -> trace.Tracer:
        return self.provider.get_tracer(name, version)

    @property
    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.provider.shutdown()


def test_every_field_of_varied_sdk_spans(recorder: Recorder) -> None:
    tracer, other_scope = recorder.tracer(), recorder.tracer("other", None)
    remote = SpanContext(0xABC, 0xDEF, True, TraceFlags(1), TraceState([("vendor", "v1"), ("k", "x")]))
    with tracer.start_as_current_span(
        "root",
        kind=SpanKind.SERVER,
        attributes={
            "agenttrace.run.id": "run-1",
            "b": True,
            "f": 1.5,
            "n": -3,
            "l": ["x", "y"],
            "li": [1, 2],
        },
    ) as root:
        root.add_event("checkpoint", {"step": 1, "ok": False})
        root.add_event("bare")
        root.set_status(Status(StatusCode.ERROR, "boom"))
        for i, kind in enumerate(KINDS):
            with other_scope.start_as_current_span(
                f"child {i}",
                kind=kind,
                attributes={"i": i, "agenttrace.run.id": ["bad id/..", "", "run-2", 5, "run-1"][i]},
                links=[Link(remote, {"why": "caused by"})] if i == 3 else None,
            ) as child:
                if i == 2:
                    child.set_status(Status(StatusCode.OK))
    with tracer.start_as_current_span(
        "under a remote parent", context=trace.set_span_in_context(trace.NonRecordingSpan(remote))
    ):
        pass
    spans = recorder.spans
    assert len(spans) == 7
    compare(spans)
    compare(spans[:1])
    compare([])


def test_spans_of_several_resources_and_a_resource_run(recorder: Recorder) -> None:
    second = Recorder(Resource.create({"service.name": "other", "agenttrace.run.id": "resource-run", "n": 3}))
    with (
        recorder.tracer().start_as_current_span("a"),
        second.tracer().start_as_current_span("b"),
        second.tracer().start_as_current_span("c", attributes={"agenttrace.run.id": "own-run"}),
    ):
        pass
    spans = recorder.spans + second.spans
    compare(spans)
    compare(second.spans)
    assert [r["RunId"] for r in rows(spans_to_batch(second.spans))] == ["own-run", "resource-run"]
    second.provider.shutdown()


def test_a_trace_started_by_a_run_in_this_process_belongs_to_it(recorder: Recorder) -> None:
    with recorder.tracer().start_as_current_span("in a run") as span:
        trace_id = span.get_span_context().trace_id
        active_runs.register(trace_id, "20261124T153012-3f9a")
        with recorder.tracer().start_as_current_span("child"):
            pass
    with recorder.tracer().start_as_current_span("another trace"):
        pass
    try:
        compare(recorder.spans)
        assert [r["RunId"] for r in rows(spans_to_batch(recorder.spans))][:2] == ["20261124T153012-3f9a"] * 2
    finally:
        del active_runs._TRACE_RUNS[trace_id]


def test_start_records_copy_what_an_open_span_may_still_change(recorder: Recorder) -> None:
    with recorder.tracer().start_as_current_span("parent"):
        open_span = recorder.tracer().start_span("still open", attributes={"k": "before"})
    open_span.add_event("e", {"x": 1})
    batch = spans_to_batch([open_span], START)
    open_span.set_attribute("k", "after")
    open_span.add_event("later")
    open_span.end()

    (row,) = rows(batch)
    assert row["RecordType"] == "start" and row["Duration"] is None and row["StatusCode"] == "Unset"
    assert row["SpanAttributes"] == [("k", "before")]
    assert [e["Name"] for e in row["Events"]] == ["e"]


def test_start_records_equal_the_reference(recorder: Recorder) -> None:
    tracer = recorder.tracer()
    with tracer.start_as_current_span("root"):
        spans = [tracer.start_span(f"open {i}", attributes={"i": i, "t": i % 2 == 0}) for i in range(3)]
    compare(spans, START)  # type: ignore[arg-type]
    for span in spans:
        span.end()


def test_spans_made_without_a_tracer_and_subclasses_use_the_public_fields() -> None:
    ctx = SpanContext(0x1234, 0x5678, False, TraceFlags(1))
    plain = ReadableSpan(
        name="hand-made",
        context=ctx,
        attributes={"x": "1", "n": 2, "raw": b"\x01\xff"},
        start_time=100,
        end_time=50,  # ends before it starts: lasted 0
        resource=Resource.create({"service.name": "hand"}),
    )

    class Renamed(ReadableSpan):
        @property
        def name(self) -> str:
            return "renamed"

    renamed = Renamed(name="original", context=SpanContext(0x1234, 0x9999, False), parent=ctx, start_time=5)
    compare([plain, renamed])
    assert [r["SpanName"] for r in rows(spans_to_batch([plain, renamed]))] == ["hand-made", "renamed"]
    no_context = ReadableSpan(name="no context", context=None)
    assert rows(spans_to_batch([no_context, plain]))[0]["SpanName"] == "hand-made"


def test_batches_larger_and_smaller_than_the_shared_buffers(recorder: Recorder) -> None:
    tracer = recorder.tracer()
    with tracer.start_as_current_span("root", attributes={"agenttrace.run.id": "big"}):
        for i in range(5000):
            with tracer.start_as_current_span("step", attributes={"i": i}):
                pass
    spans = recorder.spans
    for chunk in (spans, spans[:3], spans[:4097], spans[-2:]):
        compare(chunk)


attribute_values = st.one_of(
    st.text(max_size=12),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False),
    st.lists(st.text(max_size=4), max_size=3),
    st.lists(st.integers(min_value=-5, max_value=5), max_size=3),
    st.lists(st.booleans(), max_size=3),
)
span_shapes = st.lists(
    st.tuples(
        st.dictionaries(st.text(min_size=1, max_size=8), attribute_values, max_size=6),
        st.sampled_from(list(KINDS)),
        st.booleans(),  # nested under the previous span
        st.sampled_from([None, StatusCode.OK, StatusCode.ERROR]),
        st.integers(min_value=0, max_value=2),  # events
    ),
    min_size=1,
    max_size=20,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(span_shapes)
def test_any_attributes_kinds_and_nesting_equal_the_reference(shapes: list[tuple[Any, ...]]) -> None:
    rec = Recorder()
    tracer = rec.tracer()
    parent = None
    for attributes, kind, nested, status, events in shapes:
        context = trace.set_span_in_context(parent) if nested and parent is not None else None
        span = tracer.start_span("s", context=context, kind=kind, attributes=attributes)
        for e in range(events):
            span.add_event(f"e{e}", {"v": e})
        if status is not None:
            span.set_status(Status(status, "why" if status is StatusCode.ERROR else None))
        span.end()
        parent = span
    compare(rec.spans)
    rec.provider.shutdown()
