"""convert(): a scope's spans are checked in bulk, and span by span only where the bulk check fails;
what is kept, rejected and linked must not depend on which path a span took."""

from __future__ import annotations

from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from agenttrace.otlp.convert import MAX_TIME_NS, convert


def _span(scope: Any, name: str, trace: bytes, span: bytes, parent: bytes = b"", end: int = 2) -> Any:
    s = scope.spans.add()
    s.name, s.trace_id, s.span_id, s.parent_span_id = name, trace, span, parent
    s.start_time_unix_nano, s.end_time_unix_nano = 1, end
    return s


def test_bad_spans_are_rejected_one_by_one_and_their_neighbours_kept() -> None:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    _span(scope, "ok-1", b"\x01" * 16, b"\x01" * 8)
    _span(scope, "zero-trace", bytes(16), b"\x02" * 8)
    _span(scope, "short-span", b"\x01" * 16, b"\x03" * 7)
    late = _span(scope, "late", b"\x01" * 16, b"\x04" * 8)
    late.end_time_unix_nano = MAX_TIME_NS + 1
    _span(scope, "ok-2", b"\x01" * 16, b"\x05" * 8, parent=b"\x01" * 8, end=0)
    converted = convert(request)
    rows = converted.batch.to_pylist()
    assert [r["SpanName"] for r in rows] == ["ok-1", "ok-2"]
    assert [r["RecordType"] for r in rows] == ["end", "start"]
    assert [r["Duration"] for r in rows] == [1, None]
    assert converted.rejected == 3
    assert [p.split(":")[0] for p in converted.problems] == [
        "span 'zero-trace'",
        "span 'short-span'",
        "span 'late'",
    ]
    assert converted.ended_roots == {"01" * 16}


def test_repeated_keys_last_wins_and_run_and_session_come_from_what_was_sent() -> None:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    span = _span(scope, "s", b"\x01" * 16, b"\x01" * 8)
    for key, value in [
        ("session.id", "first"),
        ("gen_ai.conversation.id", "middle"),
        ("session.id", "last"),
        ("agenttrace.run.id", "run-a"),
        ("agenttrace.run.id", "../not-a-run"),
    ]:
        kv = span.attributes.add()
        kv.key, kv.value.string_value = key, value
    number = span.attributes.add()
    number.key, number.value.int_value = "n", 7
    span.kind, span.status.code = 99, 2  # a kind out of range is Unspecified
    converted = convert(request)
    (row,) = converted.batch.to_pylist()
    assert dict(row["SpanAttributes"]) == {
        "session.id": "last",
        "gen_ai.conversation.id": "middle",
        "agenttrace.run.id": "../not-a-run",
        "n": "7",
    }
    assert [k for k, _ in row["SpanAttributes"]] == [
        "session.id",
        "gen_ai.conversation.id",
        "agenttrace.run.id",
        "n",
    ]
    assert row["RunId"] == "run-a"  # the last safe run id sent
    assert converted.sessions == {"last": "run-a"}
    assert (row["SpanKind"], row["StatusCode"]) == ("Unspecified", "Error")
