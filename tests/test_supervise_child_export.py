"""The exporter of the agent's Python processes (`child_export`): its bytes are, once the receiver
decodes them, the very message the OpenTelemetry protobuf encoder makes of the same spans;
it sends over one keep-alive connection, waits out a busy receiver (503 + Retry-After) and fails
at once, without raising, when there is no receiver."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar

import pytest
from conftest import free_port
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from agenttrace.otlp.decode import PROTOBUF, parse_request
from agenttrace.supervise.child_export import OtlpHttpExporter, encode


def spans_of_every_shape() -> list[ReadableSpan]:
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"agenttrace.run.id": "r1", "n": 3}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agent", "1.2", schema_url="https://opentelemetry.io/schemas/1.26.0")
    remote = set_span_in_context(
        NonRecordingSpan(SpanContext(0xABC, 0xDEF, is_remote=True, trace_flags=TraceFlags(1)))
    )
    with tracer.start_as_current_span(
        "chat m",
        context=remote,
        kind=SpanKind.CLIENT,
        attributes={
            "s": "text ü",
            "b": True,
            "i": -(2**62),
            "f": 0.25,
            "inf": float("inf"),
            "strings": ["a", "b"],
            "ints": [1, 2],
            "empty": [],
        },
        links=[Link(SpanContext(0x1, 0x2, is_remote=True), {"why": "retry"})],
    ) as span:
        span.add_event("chunk", {"n": 1}, timestamp=1_700_000_000_000_000_000)
        span.set_status(Status(StatusCode.ERROR, "cut off"))
        other = provider.get_tracer("other").start_span("process true", kind=SpanKind.INTERNAL)
        other.set_attribute("process.exit.code", 0)
    open_span = provider.get_tracer("other").start_span("still open")
    other.end()
    provider.shutdown()
    return [*memory.get_finished_spans(), open_span._readable_span()]  # type: ignore[attr-defined]


def test_what_the_receiver_decodes_is_the_protobuf_encoders_message() -> None:
    spans = spans_of_every_shape()
    decoded = parse_request(encode(spans), PROTOBUF)
    assert decoded == encode_spans(spans)
    assert decoded.resource_spans[0].scope_spans[0].spans[0].end_time_unix_nano > 0
    assert decoded.resource_spans[0].scope_spans[1].spans[-1].end_time_unix_nano == 0, "a start record"


class _Receiver(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    answers: ClassVar[list[int]] = []
    bodies: ClassVar[list[bytes]] = []
    peers: ClassVar[list[Any]] = []

    def do_POST(self) -> None:
        self.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
        self.peers.append(self.client_address)
        status = self.answers.pop(0) if self.answers else 200
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "0")
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def receiver() -> Iterator[tuple[str, type[_Receiver]]]:
    handler = type("Handler", (_Receiver,), {"answers": [], "bodies": [], "peers": []})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/traces", handler
    server.shutdown()
    server.server_close()


def test_batches_go_over_one_connection_and_a_busy_receiver_is_waited_out(
    receiver: tuple[str, type[_Receiver]],
) -> None:
    endpoint, handler = receiver
    handler.answers += [503, 503]
    exporter = OtlpHttpExporter(endpoint)
    spans = spans_of_every_shape()
    assert exporter.export(spans[:1]) == SpanExportResult.SUCCESS
    assert exporter.export(spans[1:]) == SpanExportResult.SUCCESS
    assert len(handler.bodies) == 4 and handler.bodies[0] == handler.bodies[2]
    assert len(set(handler.peers)) == 1, "one keep-alive connection"
    assert parse_request(handler.bodies[3], PROTOBUF) == encode_spans(spans[1:])
    exporter.shutdown()
    assert exporter.export(spans) == SpanExportResult.FAILURE


def test_with_no_receiver_a_batch_fails_at_once_and_nothing_is_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    exporter = OtlpHttpExporter(f"http://127.0.0.1:{free_port()}/v1/traces")
    spans = spans_of_every_shape()
    assert [exporter.export(spans) for _ in range(3)] == [SpanExportResult.FAILURE] * 3
    assert exporter.failed == 3
    notes = [r.getMessage() for r in caplog.records if "could not be sent" in r.getMessage()]
    assert len(notes) == 1, "noted once"
