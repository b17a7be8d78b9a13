"""The OTLP receiver over real HTTP and gRPC, fed by the official OpenTelemetry exporters."""

from __future__ import annotations

import gzip
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import query
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpExporter
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from agenttrace.otlp.server import OtlpServer

FLUSH = 0.2


@pytest.fixture
def server(store: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[OtlpServer]:
    monkeypatch.setenv("AGENTTRACE_FLUSH_INTERVAL", str(FLUSH))
    with OtlpServer(store, port=0, grpc_port=0) as srv:
        yield srv


def post(url: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(request, timeout=10) as response:
            return response.status, response.read(), dict(response.headers)
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read(), dict(exc.headers)


def emit(exporter, run_id: str, n: int = 3) -> None:
    provider = TracerProvider(
        resource=Resource.create({"service.name": "polyglot", "agenttrace.run.id": run_id})
    )
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("t")
    with tracer.start_as_current_span("agent"):
        for i in range(n):
            with tracer.start_as_current_span(
                f"tool {i}", attributes={"gen_ai.operation.name": "execute_tool"}
            ):
                pass
    provider.shutdown()


def stored_names(store: Path, run_id: str) -> list[str]:
    rows = query(store, "SELECT name FROM spans WHERE run_id = $r AND ended ORDER BY name", {"r": run_id})
    return [r["name"] for r in rows]


def test_official_http_exporter_lands_and_is_queryable_within_a_flush(
    server: OtlpServer, store: Path
) -> None:
    emit(HttpExporter(endpoint=f"{server.endpoint}/v1/traces"), "http-run")
    time.sleep(FLUSH)
    assert stored_names(store, "http-run") == ["agent", "tool 0", "tool 1", "tool 2"]
    assert query(store, "SELECT state FROM runs WHERE run_id = 'http-run'") == [{"state": "succeeded"}]


def test_official_grpc_exporter_lands(server: OtlpServer, store: Path) -> None:
    assert server.grpc is not None
    emit(GrpcExporter(endpoint=f"127.0.0.1:{server.grpc.port}", insecure=True), "grpc-run")
    time.sleep(FLUSH)
    assert stored_names(store, "grpc-run") == ["agent", "tool 0", "tool 1", "tool 2"]


HAND_WRITTEN = {
    "resourceSpans": [
        {
            "resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "node-agent"}}]},
            "scopeSpans": [
                {
                    "scope": {"name": "manual", "version": "1"},
                    "spans": [
                        {
                            "traceId": "5b8efff798038103d269b633813fc60c",
                            "spanId": "eee19b7ec3c1b174",
                            "name": "chat gpt-4o",
                            "kind": 3,
                            "startTimeUnixNano": "1764000000000000000",
                            "endTimeUnixNano": 1764000000500000000,
                            "attributes": [
                                {"key": "gen_ai.operation.name", "value": {"stringValue": "chat"}},
                                {"key": "gen_ai.usage.input_tokens", "value": {"intValue": "120"}},
                                {"key": "ok", "value": {"boolValue": True}},
                                {"key": "tags", "value": {"arrayValue": {"values": [{"stringValue": "a"}]}}},
                            ],
                            "status": {"code": 2, "message": "rate limited"},
                            "someFutureField": {"ignored": True},
                        }
                    ],
                }
            ],
        }
    ]
}


def test_hand_written_otlp_json_follows_the_json_rules(server: OtlpServer, store: Path) -> None:
    status, body, headers = post(
        f"{server.endpoint}/v1/traces",
        json.dumps(HAND_WRITTEN).encode(),
        {"Content-Type": "application/json"},
    )
    assert status == 200 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {}
    time.sleep(FLUSH)
    row = query(store, "SELECT * FROM spans WHERE run_id = '5b8efff798038103d269b633813fc60c'")[0]
    attrs = dict(row["attributes"])
    assert (row["name"], row["kind"], row["status_code"], row["status_message"]) == (
        "chat gpt-4o",
        "Client",
        "Error",
        "rate limited",
    )
    assert row["duration_ms"] == 500.0 and row["service_name"] == "node-agent"
    assert attrs["gen_ai.usage.input_tokens"] == "120" and attrs["ok"] == "true" and attrs["tags"] == '["a"]'


def test_gzip_bodies_are_accepted(server: OtlpServer, store: Path) -> None:
    doc = json.loads(json.dumps(HAND_WRITTEN))
    doc["resourceSpans"][0]["scopeSpans"][0]["spans"][0]["traceId"] = "00000000000000000000000000000abc"
    status, _, _ = post(
        f"{server.endpoint}/v1/traces",
        gzip.compress(json.dumps(doc).encode()),
        {"Content-Type": "application/json", "Content-Encoding": "gzip"},
    )
    assert status == 200
    time.sleep(FLUSH)
    assert stored_names(store, "00000000000000000000000000000abc") == ["chat gpt-4o"]


def test_some_spans_rejected_gives_partial_success(server: OtlpServer, store: Path) -> None:
    doc = json.loads(json.dumps(HAND_WRITTEN))
    spans = doc["resourceSpans"][0]["scopeSpans"][0]["spans"]
    spans.append({**spans[0], "spanId": "abcd", "name": "short id"})
    spans.append({**spans[0], "spanId": "0000000000000000", "name": "zero id"})
    status, body, _ = post(
        f"{server.endpoint}/v1/traces", json.dumps(doc).encode(), {"Content-Type": "application/json"}
    )
    assert status == 200
    partial = json.loads(body)["partialSuccess"]
    assert partial["rejectedSpans"] == "2"
    assert "span_id must be 8 bytes, got 2" in partial["errorMessage"]
    assert "span_id must not be all zeros" in partial["errorMessage"]
    time.sleep(FLUSH)
    assert stored_names(store, "5b8efff798038103d269b633813fc60c") == ["chat gpt-4o"]


def test_protobuf_partial_success_is_protobuf(server: OtlpServer) -> None:
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id = b"\x01" * 15
    span.span_id = b"\x02" * 8
    span.name = "bad trace id"
    status, body, headers = post(
        f"{server.endpoint}/v1/traces",
        request.SerializeToString(),
        {"Content-Type": "application/x-protobuf"},
    )
    assert status == 200 and headers["Content-Type"] == "application/x-protobuf"
    response = ExportTraceServiceResponse.FromString(body)
    assert response.partial_success.rejected_spans == 1
    assert "trace_id must be 16 bytes, got 15" in response.partial_success.error_message


@pytest.mark.parametrize(
    ("body", "headers", "status", "says"),
    [
        (b"\xff\x00garbage", {"Content-Type": "application/x-protobuf"}, 400, "not a valid OTLP protobuf"),
        (
            b'{"resourceSpans": 7}',
            {"Content-Type": "application/json"},
            400,
            "resourceSpans must be an array",
        ),
        (b'{"resourceSpans": [', {"Content-Type": "application/json"}, 400, "not valid JSON"),
        (b"\xc3\x28", {"Content-Type": "application/json"}, 400, "not valid UTF-8"),
        (b"{}", {"Content-Type": "text/plain"}, 415, "Content-Type must be"),
        (
            b"not gzip",
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            400,
            "not valid gzip",
        ),
        (
            b"{}",
            {"Content-Type": "application/json", "Content-Encoding": "br"},
            400,
            "unsupported Content-Encoding",
        ),
    ],
)
def test_malformed_requests_get_400_with_what_is_wrong(
    server: OtlpServer, body: bytes, headers: dict[str, str], status: int, says: str
) -> None:
    got, text, _ = post(f"{server.endpoint}/v1/traces", body, headers)
    assert got == status
    assert says in text.decode()


def test_wrong_path_is_404(server: OtlpServer) -> None:
    got, text, _ = post(f"{server.endpoint}/v1/profiles", b"{}", {"Content-Type": "application/json"})
    assert got == 404
    assert all(path in text.decode() for path in ("/v1/traces", "/v1/logs", "/v1/metrics"))


def test_over_the_body_limit_is_413(store: Path) -> None:
    with OtlpServer(store, port=0, max_body=1000) as srv:
        got, text, _ = post(
            f"{srv.endpoint}/v1/traces", b"x" * 5000, {"Content-Type": "application/x-protobuf"}
        )
        assert got == 413 and "limit" in text.decode()
        bomb = gzip.compress(b"\x00" * 100_000)
        got, text, _ = post(
            f"{srv.endpoint}/v1/traces",
            bomb,
            {"Content-Type": "application/x-protobuf", "Content-Encoding": "gzip"},
        )
        assert got == 413 and "decompressed" in text.decode()


def test_backpressure_is_503_with_retry_after(server: OtlpServer) -> None:
    receiver = server.receiver
    taken = 0
    while receiver.try_enter():  # every in-flight slot busy, as under a load the store cannot keep up with
        taken += 1
    try:
        got, _, headers = post(f"{server.endpoint}/v1/traces", b"", {"Content-Type": "application/json"})
        assert got == 503 and headers["Retry-After"] == "1"
    finally:
        for _ in range(taken):
            receiver.leave()
    got, _, _ = post(f"{server.endpoint}/v1/traces", b"{}", {"Content-Type": "application/json"})
    assert got == 200


def test_a_token_is_required_when_set(store: Path) -> None:
    with OtlpServer(store, port=0, token="s3cret") as srv:
        url = f"{srv.endpoint}/v1/traces"
        assert post(url, b"{}", {"Content-Type": "application/json"})[0] == 401
        assert (
            post(url, b"{}", {"Content-Type": "application/json", "Authorization": "Bearer nope"})[0] == 401
        )
        assert (
            post(url, b"{}", {"Content-Type": "application/json", "Authorization": "Bearer s3cret"})[0] == 200
        )
