"""All three OTLP signals: log records and metric data points are stored like spans (spool, crash
safety, bounds, Parquet parts per run, manifest) and read through the `logs` and `metrics` views."""

from __future__ import annotations

import gzip
import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import free_port, query, run_cli, start_serve
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)

from agenttrace.otlp.forward import target_from
from agenttrace.otlp.receiver import Receiver
from agenttrace.otlp.server import OtlpServer
from agenttrace.store.layout import LOGS, SAMPLES, SPANS, StoreLayout
from agenttrace.store.manifest import Manifest, check_run
from agenttrace.store.reader import snapshot
from agenttrace.store.writer import PartWritten, StoreWriter

T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def log_rows(run_id: str, bodies: list[str]) -> pa.Table:
    """Log records with only some columns: the writer fills the others with nulls."""
    n = len(bodies)
    return pa.table(
        {
            "Timestamp": pa.array([T0] * n, pa.timestamp("ns", tz="UTC")),
            "Body": bodies,
            "SeverityText": ["INFO"] * n,
            "SeverityNumber": pa.array([9] * n, pa.int32()),
            "TraceId": [""] * n,
            "SpanId": [""] * n,
            "RunId": [run_id] * n,
        }
    )


def sample_rows(run_id: str, values: list[float]) -> pa.Table:
    n = len(values)
    return pa.table(
        {
            "TimeUnix": pa.array([T0] * n, pa.timestamp("ns", tz="UTC")),
            "MetricName": ["tokens"] * n,
            "MetricType": ["Sum"] * n,
            "Value": values,
            "AggregationTemporality": pa.array([2] * n, pa.int32()),
            "IsMonotonic": [True] * n,
            "RunId": [run_id] * n,
        }
    )


# -- the store ------------------------------------------------------------------------------------
def test_each_kind_has_its_spool_and_its_parts(store: Path) -> None:
    layout = StoreLayout(store)
    written: list[PartWritten] = []
    writer = StoreWriter(layout, on_part=written.append)
    writer.append(log_rows("run-a", ["hello", "world"]), kind=LOGS)
    writer.append(sample_rows("run-a", [1.0, 2.0, 3.0]), kind=SAMPLES)
    assert (store / "spool" / "run-a" / "logs").is_dir()
    assert (store / "spool" / "run-a" / "samples").is_dir()
    live = snapshot(layout)
    assert live.live_runs == ["run-a"]
    assert live.spool_logs.column("Body").to_pylist() == ["hello", "world"]
    assert live.spool_samples.column("Value").to_pylist() == [1.0, 2.0, 3.0]
    assert live.spool_spans.num_rows == 0, "no kind is read as another"
    rows = query(store, "SELECT body, severity_text, severity_number, trace_id FROM logs ORDER BY body")
    assert rows == [
        {"body": "hello", "severity_text": "INFO", "severity_number": 9, "trace_id": None},
        {"body": "world", "severity_text": "INFO", "severity_number": 9, "trace_id": None},
    ]
    writer.close()
    assert sorted(p.kind for p in written) == [LOGS, SAMPLES]
    assert all(p.path.parent.parent.name == p.kind for p in written)
    assert not (store / "spool" / "run-a").exists(), "sealed spools leave no folder behind"
    sealed = snapshot(layout)
    assert len(sealed.log_parts) == 1 and len(sealed.sample_parts) == 1 and not sealed.span_parts
    rows = query(store, "SELECT kind, value, temporality, is_monotonic FROM metrics ORDER BY value")
    assert rows == [
        {"kind": "sum", "value": v, "temporality": "cumulative", "is_monotonic": True} for v in (1, 2, 3)
    ]
    assert query(store, "SELECT count(*) AS n FROM logs") == [{"n": 2}]


def test_open_spools_of_every_kind_share_one_bound(store: Path) -> None:
    writer = StoreWriter(StoreLayout(store), max_open_runs=2)
    writer.append(log_rows("r1", ["a"]), kind=LOGS)
    writer.append(sample_rows("r1", [1.0]), kind=SAMPLES)
    writer.append(log_rows("r2", ["b"]), kind=LOGS)  # a third spool: the oldest is sealed first
    assert writer.open_runs == 2 and writer.evicted == 1
    writer.close()
    assert query(store, "SELECT run_id, body FROM logs ORDER BY run_id") == [
        {"run_id": "r1", "body": "a"},
        {"run_id": "r2", "body": "b"},
    ]


def test_seal_run_seals_every_kind_of_the_run(store: Path) -> None:
    layout = StoreLayout(store)
    writer = StoreWriter(layout)
    writer.append(log_rows("r1", ["a"]), kind=LOGS)
    writer.append(sample_rows("r1", [1.0]), kind=SAMPLES)
    writer.seal_run("r1")
    assert writer.open_runs == 0
    snap = snapshot(layout)
    assert len(snap.log_parts) == 1 and len(snap.sample_parts) == 1 and not snap.live_runs
    writer.close()


def test_a_dead_writers_log_segments_are_recovered_into_a_log_part(store: Path) -> None:
    """A writer killed before sealing: the next reader turns its log spool into a logs/ part."""
    program = textwrap.dedent(
        f"""
        import os, sys
        from pathlib import Path
        sys.path.insert(0, {str(Path(__file__).parent)!r})
        from test_otlp_logs_metrics import log_rows, sample_rows
        from agenttrace.store.layout import LOGS, SAMPLES, StoreLayout
        from agenttrace.store.writer import StoreWriter
        writer = StoreWriter(StoreLayout(Path({str(store)!r})))
        writer.append(log_rows("crashed", ["before the crash"]), kind=LOGS)
        writer.append(sample_rows("crashed", [7.0]), kind=SAMPLES)
        os._exit(0)  # no close: the spool stays behind, its lock released by the kernel
        """
    )
    subprocess.run([sys.executable, "-c", program], check=True, timeout=60)
    assert (store / "spool" / "crashed" / "logs").is_dir()
    assert query(store, "SELECT body FROM logs") == [{"body": "before the crash"}]
    assert query(store, "SELECT value FROM metrics") == [{"value": 7.0}]
    layout = StoreLayout(store)
    snap = snapshot(layout)
    assert len(snap.log_parts) == 1 and len(snap.sample_parts) == 1
    assert not (store / "spool" / "crashed").exists()


def test_the_manifest_covers_log_and_sample_parts(store: Path) -> None:
    layout = StoreLayout(store)
    written: list[PartWritten] = []
    writer = StoreWriter(layout, on_part=written.append)
    writer.append(log_rows("r1", ["a"]), kind=LOGS)
    writer.append(sample_rows("r1", [1.0]), kind=SAMPLES)
    writer.close()
    manifest = Manifest("r1", 1, complete=True)
    for part in written:
        manifest.add(layout, part.path, part.sha256, part.rows, "agent")
    parts = [p.path for p in written]
    check = check_run(layout, manifest, parts, verify_hashes=True)
    assert check.problems == []
    assert check.kind_parts[LOGS]["agent"] == [p.path for p in written if p.kind == LOGS]
    assert check.kind_parts[SAMPLES]["agent"] == [p.path for p in written if p.kind == SAMPLES]
    assert check.parts == {"supervisor": [], "agent": []}, "`parts` stays the span parts"
    assert check.kind_parts[SPANS] is check.parts
    forged = parts[0].with_name("part-9-forged.parquet")
    forged.write_bytes(parts[0].read_bytes())
    check = check_run(layout, manifest, [*parts, forged], verify_hashes=True)
    assert [part for _, part in check.problems] == [f"logs/run_id=r1/{forged.name}"]


# -- OTLP in: the official SDK exporters, JSON, gzip, chunked ------------------------------------
FLUSH = 0.2
LOG_PATH, METRIC_PATH = "/v1/logs", "/v1/metrics"


def post(
    port: int, path: str, body: bytes, headers: dict[str, str], *, chunked: bool = False
) -> tuple[int, bytes]:
    """POST over a fresh connection; `chunked`: Transfer-Encoding: chunked, no Content-Length (as
    Claude Code's exporter sends)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        if chunked:
            pieces = [body[i : i + 100] for i in range(0, len(body), 100)]
            conn.request("POST", path, body=iter(pieces), headers=headers, encode_chunked=True)
        else:
            conn.request("POST", path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


PB = {"Content-Type": "application/x-protobuf"}
JS = {"Content-Type": "application/json"}


def emit_sdk(transport: str, http_port: int, grpc_port: int, run_id: str) -> tuple[str, str]:
    """Logs and metrics through the official SDK and OTLP exporters; returns the (trace, span) ids
    the log records were emitted under."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider

    if transport == "http":
        from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
        from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter

        logs = OTLPLogExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/logs")
        metrics = OTLPMetricExporter(endpoint=f"http://127.0.0.1:{http_port}/v1/metrics")
    else:
        from opentelemetry.exporter.otlp.proto.grpc._log_exporter import OTLPLogExporter as GrpcLogs
        from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetrics

        logs = GrpcLogs(endpoint=f"127.0.0.1:{grpc_port}", insecure=True)
        metrics = GrpcMetrics(endpoint=f"127.0.0.1:{grpc_port}", insecure=True)
    resource = Resource.create({"service.name": "sdk-agent", "agenttrace.run.id": run_id})
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(BatchLogRecordProcessor(logs, schedule_delay_millis=100))
    meter_provider = MeterProvider(
        resource=resource,
        metric_readers=[PeriodicExportingMetricReader(metrics, export_interval_millis=60_000)],
    )
    logger = logger_provider.get_logger("agent.events", "1.2")
    tracer = TracerProvider(resource=resource).get_tracer("t")
    with tracer.start_as_current_span("tool call") as span:
        logger.emit(
            body="tool finished",
            severity_number=SeverityNumber.INFO,
            severity_text="INFO",
            attributes={"tool_name": "Bash", "success": True, "duration_ms": 42},
            event_name="tool_result",
        )
        context = span.get_span_context()
    logger.emit(
        body={"prompt_tokens": 12, "model": "m"},
        severity_number=SeverityNumber.WARN,
        severity_text="WARN",
        attributes={"event.name": "api_request"},
    )
    meter = meter_provider.get_meter("agent.metrics")
    tokens = meter.create_counter("agent.tokens", unit="{token}", description="tokens used")
    tokens.add(3, {"type": "input"})
    tokens.add(4, {"type": "input"})
    latency = meter.create_histogram("agent.latency", unit="s")
    latency.record(0.5)
    latency.record(2.5)
    meter.create_gauge("agent.queue").set(5)
    meter.create_up_down_counter("agent.sessions").add(-2)
    logger_provider.shutdown()
    meter_provider.shutdown()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


@pytest.mark.parametrize("transport", ["http", "grpc"])
def test_the_official_sdk_exporters_land_in_the_logs_and_metrics_views(store: Path, transport: str) -> None:
    http_port, grpc_port = free_port(), free_port()
    server = start_serve(store, http_port, "--grpc-port", str(grpc_port))
    run_id = f"sdk-{transport}"
    try:
        trace_id, span_id = emit_sdk(transport, http_port, grpc_port, run_id)
        live = query(store, "SELECT count(*) AS n FROM logs WHERE run_id = $r", {"r": run_id})
        assert live == [{"n": 2}], "acknowledged records are queryable at once (from the spool)"
    finally:
        stop(server)
    logs = query(
        store,
        "SELECT body, severity_text, severity_number, event_name, trace_id, span_id, service_name, "
        "scope_name, scope_version, attributes, resource_attributes, origin, time IS NOT NULL AS timed, "
        "observed_time IS NOT NULL AS observed FROM logs WHERE run_id = $r ORDER BY severity_number",
        {"r": run_id},
    )
    assert len(logs) == 2
    first, second = logs
    assert first["body"] == "tool finished" and first["severity_text"] == "INFO"
    assert first["severity_number"] == 9 and first["event_name"] == "tool_result"
    assert (first["trace_id"], first["span_id"]) == (trace_id, span_id)
    assert first["attributes"] == {"tool_name": "Bash", "success": "true", "duration_ms": "42"}
    assert (
        first["service_name"] == "sdk-agent" and first["resource_attributes"]["agenttrace.run.id"] == run_id
    )
    assert (first["scope_name"], first["scope_version"]) == ("agent.events", "1.2")
    assert first["timed"] and first["observed"] and first["origin"] is None
    assert json.loads(second["body"]) == {"prompt_tokens": 12, "model": "m"}
    assert second["event_name"] == "api_request" and second["severity_number"] == 13
    assert second["trace_id"] is None and second["span_id"] is None
    points = query(
        store,
        "SELECT name, kind, value, count, sum, min, max, temporality, is_monotonic, unit, description, "
        "attributes, service_name, start_time IS NOT NULL AS started FROM metrics "
        "WHERE run_id = $r ORDER BY name",
        {"r": run_id},
    )
    by_name = {p["name"]: p for p in points}
    assert sorted(by_name) == ["agent.latency", "agent.queue", "agent.sessions", "agent.tokens"]
    tokens = by_name["agent.tokens"]
    assert (tokens["kind"], tokens["value"], tokens["temporality"], tokens["is_monotonic"]) == (
        "sum", 7.0, "cumulative", True,
    )  # fmt: skip
    assert tokens["attributes"] == {"type": "input"} and tokens["unit"] == "{token}"
    assert tokens["description"] == "tokens used" and tokens["service_name"] == "sdk-agent"
    latency = by_name["agent.latency"]
    assert latency["kind"] == "histogram" and latency["value"] is None
    assert (latency["count"], latency["sum"], latency["min"], latency["max"]) == (2, 3.0, 0.5, 2.5)
    assert by_name["agent.queue"]["kind"] == "gauge" and by_name["agent.queue"]["value"] == 5.0
    sessions = by_name["agent.sessions"]
    assert (sessions["kind"], sessions["value"], sessions["is_monotonic"]) == ("sum", -2.0, False)
    assert layout_parts(store, LOGS, run_id) == 1 and layout_parts(store, SAMPLES, run_id) == 1


def stop(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGTERM)
    _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err


def layout_parts(store: Path, kind: str, run_id: str) -> int:
    return len(list((store / kind / f"run_id={run_id}").glob("*.parquet")))


def json_logs(run_id: str | None, records: list[dict], resource: list[dict] | None = None) -> bytes:
    attributes = list(resource or [])
    if run_id:
        attributes.append({"key": "agenttrace.run.id", "value": {"stringValue": run_id}})
    return json.dumps(
        {
            "resourceLogs": [
                {
                    "resource": {"attributes": attributes},
                    "scopeLogs": [{"scope": {"name": "cli"}, "logRecords": records}],
                }
            ]
        }
    ).encode()


def json_metrics(run_id: str | None, metrics: list[dict], resource: list[dict] | None = None) -> bytes:
    attributes = list(resource or [])
    if run_id:
        attributes.append({"key": "agenttrace.run.id", "value": {"stringValue": run_id}})
    return json.dumps(
        {
            "resourceMetrics": [
                {"resource": {"attributes": attributes}, "scopeMetrics": [{"metrics": metrics}]}
            ]
        }
    ).encode()


@pytest.fixture
def served(store: Path) -> Iterator[int]:
    """A real `agenttrace serve`; yields its port; stopped (and checked to exit 0) after the test."""
    port = free_port()
    server = start_serve(store, port)
    yield port
    stop(server)


def test_otlp_json_with_int_values_as_numbers_and_as_strings(store: Path, served: int) -> None:
    trace = "5B8EFFF798038103D269B633813FC60C"  # hex ids, in any case
    records = [
        {
            "timeUnixNano": "1767323045000000000",
            "severityNumber": 9,
            "severityText": "INFO",
            "body": {"intValue": 42},
            "attributes": [
                {"key": "input_tokens", "value": {"intValue": 1200}},
                {"key": "output_tokens", "value": {"intValue": "345"}},
                {"key": "event.name", "value": {"stringValue": "codex.sse_event"}},
            ],
            "traceId": trace,
            "spanId": "051581bf3cb55c13",
            # Codex 0.17x fills the event name field with where its code logged the event; the
            # `event.name` attribute is the name.
            "eventName": "event otel/src/events/session_telemetry.rs:1123",
        },
        {"timeUnixNano": 1767323046000000000, "body": {"stringValue": "plain"}, "eventName": "done"},
    ]
    status, answer = post(served, LOG_PATH, json_logs("json-run", records), JS)
    assert status == 200 and json.loads(answer) == {}
    exemplar = {"asDouble": 1.0, "timeUnixNano": "1", "traceId": trace, "spanId": "051581bf3cb55c13"}
    metrics = [
        {
            "name": "codex.tokens",
            "sum": {
                "aggregationTemporality": 1,
                "isMonotonic": True,
                "dataPoints": [
                    {
                        "asInt": "9007199254740993",
                        "timeUnixNano": "1767323045000000000",
                        "exemplars": [exemplar],
                    },
                    {
                        "asInt": 17,
                        "timeUnixNano": 1767323046000000000,
                        "startTimeUnixNano": "1767323040000000000",
                    },
                ],
            },
        },
        {
            "name": "gemini.ratio",
            "gauge": {"dataPoints": [{"asDouble": 0.25, "timeUnixNano": "1767323045000000000"}]},
        },
        {
            "name": "claude.latency",
            "histogram": {
                "aggregationTemporality": 2,
                "dataPoints": [
                    {
                        "timeUnixNano": "1767323045000000000",
                        "count": "3",
                        "sum": 6.5,
                        "bucketCounts": ["1", 2],
                        "explicitBounds": [1.0],
                        "min": 0.5,
                        "max": 4,
                    }
                ],
            },
        },
        {
            "name": "rpc.duration",
            "summary": {
                "dataPoints": [
                    {
                        "timeUnixNano": "1767323045000000000",
                        "count": 4,
                        "sum": 10,
                        "quantileValues": [{"quantile": 0.5, "value": 2}, {"quantile": 1, "value": 5}],
                    }
                ]
            },
        },
        {
            "name": "exp",
            "exponentialHistogram": {
                "aggregationTemporality": 1,
                "dataPoints": [
                    {
                        "timeUnixNano": "1767323045000000000",
                        "count": "5",
                        "scale": -1,
                        "zeroCount": 1,
                        "positive": {"offset": 2, "bucketCounts": ["3", 1]},
                    }
                ],
            },
        },
    ]
    status, answer = post(served, METRIC_PATH, json_metrics("json-run", metrics), JS)
    assert status == 200 and json.loads(answer) == {}
    logs = query(
        store, "SELECT body, attributes, trace_id, span_id, event_name, time FROM logs ORDER BY time"
    )
    assert [r["body"] for r in logs] == ["42", "plain"]
    assert logs[0]["attributes"]["input_tokens"] == "1200" and logs[0]["attributes"]["output_tokens"] == "345"
    assert (logs[0]["trace_id"], logs[0]["span_id"]) == (trace.lower(), "051581bf3cb55c13")
    assert [r["event_name"] for r in logs] == ["codex.sse_event", "done"]
    assert logs[0]["time"] == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    rows = query(
        store,
        "SELECT name, kind, value, count, sum, min, max, bucket_counts, explicit_bounds, quantiles, scale, "
        "zero_count, positive_offset, positive_bucket_counts, temporality, is_monotonic, start_time "
        "FROM metrics ORDER BY name, time",
    )
    by_name: dict[str, list[dict]] = {}
    for row in rows:
        by_name.setdefault(row["name"], []).append(row)
    sums = by_name["codex.tokens"]
    assert [r["value"] for r in sums] == [9007199254740993.0, 17.0]
    assert {(r["kind"], r["temporality"], r["is_monotonic"]) for r in sums} == {("sum", "delta", True)}
    assert sums[0]["start_time"] is None and sums[1]["start_time"] == datetime(2026, 1, 2, 3, 4, tzinfo=UTC)
    (gauge,) = by_name["gemini.ratio"]
    assert (gauge["kind"], gauge["value"], gauge["temporality"]) == ("gauge", 0.25, None)
    (histogram,) = by_name["claude.latency"]
    assert (histogram["count"], histogram["sum"], histogram["min"], histogram["max"]) == (3, 6.5, 0.5, 4.0)
    assert histogram["bucket_counts"] == [1, 2] and histogram["explicit_bounds"] == [1.0]
    assert histogram["temporality"] == "cumulative"
    (summary,) = by_name["rpc.duration"]
    assert summary["kind"] == "summary" and (summary["count"], summary["sum"]) == (4, 10.0)
    assert summary["quantiles"] == [{"Quantile": 0.5, "Value": 2.0}, {"Quantile": 1.0, "Value": 5.0}]
    (exp,) = by_name["exp"]
    assert exp["kind"] == "exponential_histogram" and (exp["count"], exp["scale"], exp["zero_count"]) == (
        5,
        -1,
        1,
    )
    assert exp["positive_offset"] == 2 and exp["positive_bucket_counts"] == [3, 1]
    assert exp["min"] is None


def pb_logs(run_id: str, bodies: list[str]) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    rl = request.resource_logs.add()
    kv = rl.resource.attributes.add()
    kv.key, kv.value.string_value = "agenttrace.run.id", run_id
    scope = rl.scope_logs.add()
    for i, body in enumerate(bodies):
        record = scope.log_records.add()
        record.time_unix_nano = 1_767_323_045_000_000_000 + i
        record.body.string_value = body
    return request


def pb_metrics(run_id: str, values: list[int]) -> ExportMetricsServiceRequest:
    request = ExportMetricsServiceRequest()
    rm = request.resource_metrics.add()
    kv = rm.resource.attributes.add()
    kv.key, kv.value.string_value = "agenttrace.run.id", run_id
    metric = rm.scope_metrics.add().metrics.add()
    metric.name = "n"
    for i, value in enumerate(values):
        point = metric.gauge.data_points.add()
        point.time_unix_nano = 1_767_323_045_000_000_000 + i
        point.as_int = value
    return request


def test_gzip_and_chunked_bodies(store: Path, served: int) -> None:
    logs = pb_logs("gz", [f"record {i}" for i in range(50)]).SerializeToString()
    metrics = pb_metrics("gz", list(range(30))).SerializeToString()
    gz = {**PB, "Content-Encoding": "gzip"}
    assert post(served, LOG_PATH, gzip.compress(logs), gz)[0] == 200
    assert post(served, METRIC_PATH, metrics, PB, chunked=True)[0] == 200
    assert (
        post(
            served,
            LOG_PATH,
            gzip.compress(pb_logs("gz", ["chunked+gzip"]).SerializeToString()),
            gz,
            chunked=True,
        )[0]
        == 200
    )
    assert query(store, "SELECT count(*) AS n FROM logs WHERE run_id = 'gz'") == [{"n": 51}]
    assert query(store, "SELECT count(*) AS n, sum(value) AS total FROM metrics WHERE run_id = 'gz'") == [
        {"n": 30, "total": float(sum(range(30)))}
    ]


def test_malformed_bodies_get_400_and_nothing_stored_is_lost(store: Path, served: int) -> None:
    assert post(served, LOG_PATH, pb_logs("kept", ["before"]).SerializeToString(), PB)[0] == 200
    assert post(served, METRIC_PATH, pb_metrics("kept", [7]).SerializeToString(), PB)[0] == 200
    for path in (LOG_PATH, METRIC_PATH):
        for body, headers, says in (
            (b"\xff\xff\xff garbage", PB, "not a valid OTLP protobuf"),
            (b"{not json", JS, "not valid JSON"),
            (b'{"resourceLogs": 3, "resourceMetrics": 3}', JS, "must be an array"),
            (b"\x1f\x8b broken", {**PB, "Content-Encoding": "gzip"}, "not valid gzip"),
        ):
            status, text = post(served, path, body, headers)
            assert status == 400 and says in text.decode(), (path, status, text)
    bad_trace = json_logs("kept", [{"body": {"stringValue": "x"}, "traceId": "abcd"}])
    status, text = post(served, LOG_PATH, bad_trace, JS)
    assert status == 200 and json.loads(text) == {
        "partialSuccess": {
            "rejectedLogRecords": "1",
            "errorMessage": "1 log record(s) rejected: "
            "log record 'x': trace_id must be 16 bytes or empty, got 2",
        }
    }
    late = pb_metrics("kept", [1, 2])
    late.resource_metrics[0].scope_metrics[0].metrics[0].gauge.data_points[1].time_unix_nano = 2**64 - 1
    status, text = post(served, METRIC_PATH, late.SerializeToString(), PB)
    answer = ExportMetricsServiceResponse.FromString(text)
    assert status == 200 and answer.partial_success.rejected_data_points == 1
    assert query(store, "SELECT body FROM logs") == [{"body": "before"}]
    assert query(store, "SELECT value FROM metrics ORDER BY value") == [{"value": 1.0}, {"value": 7.0}]


def test_records_link_to_runs_by_run_id_trace_id_then_session(store: Path, served: int) -> None:
    """A session's span names its run (trace id); its log records and data points without a run
    or a trace join that run; an unknown session forms its own run."""
    span = {
        "resourceSpans": [
            {
                "resource": {"attributes": []},
                "scopeSpans": [
                    {
                        "spans": [
                            {
                                "traceId": "aa" * 16,
                                "spanId": "bb" * 8,
                                "name": "claude_code.interaction",
                                "startTimeUnixNano": "1",
                                "endTimeUnixNano": "2",
                                "attributes": [{"key": "session.id", "value": {"stringValue": "sess-1"}}],
                            }
                        ]
                    }
                ],
            }
        ]
    }
    assert post(served, "/v1/traces", json.dumps(span).encode(), JS)[0] == 200
    session = [{"key": "session.id", "value": {"stringValue": "sess-1"}}]
    records = [
        {"body": {"stringValue": "by session"}, "attributes": session},
        {"body": {"stringValue": "by trace"}, "traceId": "cc" * 16, "attributes": session},
        {"body": {"stringValue": "by conversation"}, "attributes": [
            {"key": "conversation.id", "value": {"stringValue": "conv-9"}}]},
        {"body": {"stringValue": "nothing"}},
    ]  # fmt: skip
    assert post(served, LOG_PATH, json_logs(None, records), JS)[0] == 200
    gemini = [{"key": "session.id", "value": {"stringValue": "sess-1"}}]
    metric = [{"name": "m", "gauge": {"dataPoints": [{"asInt": 1, "timeUnixNano": "5"}]}}]
    assert post(served, METRIC_PATH, json_metrics(None, metric, resource=gemini), JS)[0] == 200
    named = json_logs(
        "explicit", [{"body": {"stringValue": "by run id"}, "traceId": "dd" * 16, "attributes": session}]
    )
    assert post(served, LOG_PATH, named, JS)[0] == 200
    assert (
        post(
            served, LOG_PATH, json_logs(None, [{"body": {"stringValue": "after"}, "attributes": session}]), JS
        )[0]
        == 200
    )
    rows = query(store, "SELECT body, run_id FROM logs ORDER BY body")
    assert {r["body"]: r["run_id"] for r in rows} == {
        "by session": "aa" * 16,  # the session's span was in the trace's run
        "by trace": "cc" * 16,
        "by conversation": "conv-9",  # a session seen nowhere else: its own run
        "nothing": "unlinked",
        "by run id": "explicit",
        "after": "explicit",  # the run the session was last seen in
    }
    # The session was last seen (before the metric came) in trace cc's run, by "by trace".
    assert query(store, "SELECT run_id FROM metrics") == [{"run_id": "cc" * 16}]


def test_records_are_forwarded_to_the_signals_url(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENTTRACE_FLUSH_INTERVAL", str(FLUSH))
    local, backend_store = tmp_path / "local", tmp_path / "backend"
    with (
        OtlpServer(backend_store, port=0) as backend,
        OtlpServer(local, port=0, forward=backend.endpoint) as tee,
    ):
        assert post(tee.port, LOG_PATH, pb_logs("tee", ["a", "b"]).SerializeToString(), PB)[0] == 200
        assert post(tee.port, METRIC_PATH, pb_metrics("tee", [3]).SerializeToString(), PB)[0] == 200
        forwarder = tee.receiver.forwarder
        assert forwarder is not None
        deadline = time.monotonic() + 15
        while not (forwarder.forwarded == 2 and forwarder.pending == 0) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert forwarder.forwarded == 2 and forwarder.failed == 0
    for where in (local, backend_store):
        assert query(where, "SELECT body FROM logs ORDER BY body") == [{"body": "a"}, {"body": "b"}]
        assert query(where, "SELECT value FROM metrics") == [{"value": 3.0}]


def test_forward_urls_per_signal() -> None:
    target = target_from("http://collector:4318", {})
    assert target is not None
    assert target.url_for("logs") == ("http://collector:4318/v1/logs", {})
    assert target.url_for("metrics") == ("http://collector:4318/v1/metrics", {})
    env = {
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://t:4318/custom",
        "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://l:4318/v1/logs",
        "OTEL_EXPORTER_OTLP_LOGS_HEADERS": "x-logs=1",
    }
    target = target_from(None, env)
    assert target is not None and target.url == "http://t:4318/custom"
    assert target.url_for("logs") == ("http://l:4318/v1/logs", {"x-logs": "1"})
    assert target.url_for("metrics") is None, "no endpoint for metrics: not forwarded"
    sibling = target_from("http://c:4318/otlp/v1/traces", {})
    assert sibling is not None and sibling.url_for("metrics") == ("http://c:4318/otlp/v1/metrics", {})


def test_acknowledged_records_survive_sigkill(store: Path) -> None:
    port = free_port()
    server = start_serve(store, port)
    try:
        for i in range(20):
            assert post(port, LOG_PATH, pb_logs("killed", [f"r{i}"]).SerializeToString(), PB)[0] == 200
            assert post(port, METRIC_PATH, pb_metrics("killed", [i]).SerializeToString(), PB)[0] == 200
    finally:
        server.kill()
        server.communicate(timeout=30)
    assert query(store, "SELECT count(*) AS n FROM logs WHERE run_id = 'killed'") == [{"n": 20}]
    assert query(store, "SELECT count(*) AS n FROM metrics WHERE run_id = 'killed'") == [{"n": 20}]
    assert not (store / "spool" / "killed").exists(), "the next reader recovered the dead server's spool"
    assert layout_parts(store, LOGS, "killed") == 1 and layout_parts(store, SAMPLES, "killed") == 1


# -- under `agenttrace run`: the agent's logs are its run's, covered by the manifest ---------------
AGENT = """\
import os
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

# The bootstrap sets up traces only: the agent configures its own logger and meter providers,
# sending where OTEL_EXPORTER_OTLP_ENDPOINT says (the run's receiver), as any OTel agent does.
resource = Resource.create({"service.name": "cli-agent"})
logs = LoggerProvider(resource=resource)
logs.add_log_record_processor(BatchLogRecordProcessor(OTLPLogExporter()))
reader = PeriodicExportingMetricReader(OTLPMetricExporter())
metrics = MeterProvider(resource=resource, metric_readers=[reader])
logs.get_logger("agent").emit(
    body="ran ls", attributes={"event.name": "tool_result", "tool_name": "Bash", "success": True}
)
metrics.get_meter("agent").create_counter("agent.tool_calls").add(1)
logs.shutdown()
metrics.shutdown()
print("sent to", os.environ["OTEL_EXPORTER_OTLP_ENDPOINT"])
"""


def integrity(store: Path, run_id: str) -> tuple[int, dict]:
    audited = run_cli("audit", run_id, "--json", "--store", str(store))
    verdict = json.loads(audited.stdout)
    (gate,) = [g for g in verdict["gates"] if g["name"] == "integrity"]
    return audited.returncode, gate


def test_an_agents_logs_under_agenttrace_run_are_its_runs_and_tamper_evident(tmp_path: Path) -> None:
    store = tmp_path / "store"
    (tmp_path / "agent.py").write_text(AGENT)
    # The user's own logs endpoint is not the agent's: the run's receiver takes all three signals.
    elsewhere = {"OTEL_EXPORTER_OTLP_LOGS_ENDPOINT": "http://127.0.0.1:9/v1/logs"}
    command = ("run", "--store", str(store), "--", sys.executable, "agent.py")
    result = run_cli(*command, cwd=tmp_path, timeout=90, env=elsewhere)
    assert result.returncode == 0, result.stderr
    assert "sent to http://127.0.0.1:" in result.stdout
    (run,) = query(store, "SELECT run_id, supervised FROM runs")
    run_id = run["run_id"]
    assert run["supervised"]
    rows = query(store, "SELECT run_id, body, event_name, service_name, origin FROM logs")
    assert rows == [
        {
            "run_id": run_id,
            "body": "ran ls",
            "event_name": "tool_result",
            "service_name": "cli-agent",
            "origin": "agent",
        }
    ]
    assert query(store, "SELECT run_id, name, value, origin FROM metrics") == [
        {"run_id": run_id, "name": "agent.tool_calls", "value": 1.0, "origin": "agent"}
    ]
    manifest = json.loads((store / "manifests" / f"{run_id}.json").read_text())
    listed = {p["path"].split("/", 1)[0] for p in manifest["parts"]}
    assert {"spans", "logs", "samples"} <= listed
    code, gate = integrity(store, run_id)
    assert code == 0 and gate["status"] == "pass", gate

    (log_part,) = (store / "logs" / f"run_id={run_id}").glob("*.parquet")
    original = log_part.read_bytes()
    changed = bytearray(original)
    changed[8] ^= 0xFF  # in the data, not in the footer (the part is tiny): it still opens
    os.chmod(log_part, 0o600)
    log_part.write_bytes(bytes(changed))
    code, gate = integrity(store, run_id)
    assert code == 1 and gate["status"] == "fail"
    assert any(
        "was changed after the supervisor wrote it" in v["reason"] and log_part.name in (v.get("part") or "")
        for v in gate["violations"]
    ), gate
    assert query(store, "SELECT count(*) AS n FROM logs") == [{"n": 0}], "a changed part is not read"

    log_part.write_bytes(original)
    forged = log_part.with_name("part-9-forged.parquet")
    forged.write_bytes(original)
    (sample_part,) = (store / "samples" / f"run_id={run_id}").glob("*.parquet")
    sample_part.unlink()
    code, gate = integrity(store, run_id)
    assert code == 1
    reasons = {(v.get("part") or "").rsplit("/", 1)[-1]: v["reason"] for v in gate["violations"]}
    assert "was not written by the run's supervisor" in reasons[forged.name]
    assert "was deleted after the supervisor wrote it" in reasons[sample_part.name]
    assert query(store, "SELECT body FROM logs") == [{"body": "ran ls"}], "only the listed part is read"


# -- fuzz: malformed log and metric bodies ---------------------------------------------------------
FUZZ_OK = {200, 400, 413, 415}


def fuzz(examples: int) -> settings:
    return settings(
        max_examples=examples, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Receiver]:
    store = tmp_path_factory.mktemp("fuzz-signals") / "store"
    rx = Receiver(store, flush_interval=0.2, max_body=256 * 1024)
    assert (
        rx.handle_http("POST", LOG_PATH, _lower(PB), pb_logs("kept", ["kept"]).SerializeToString()).status
        == 200
    )
    assert (
        rx.handle_http("POST", METRIC_PATH, _lower(PB), pb_metrics("kept", [5]).SerializeToString()).status
        == 200
    )
    yield rx
    rx.close()
    assert query(store, "SELECT body FROM logs WHERE run_id = 'kept'") == [{"body": "kept"}]
    assert query(store, "SELECT value FROM metrics WHERE run_id = 'kept'") == [{"value": 5.0}]


def _lower(headers: dict[str, str]) -> dict[str, str]:
    return {k.lower(): v for k, v in headers.items()}


def fuzz_check(receiver: Receiver, path: str, headers: dict[str, str], body: bytes) -> None:
    answer = receiver.handle_http("POST", path, _lower(headers), body)
    assert answer.status in FUZZ_OK, (path, answer.status, answer.body[:200])


@fuzz(150)
@given(body=st.binary(max_size=2048), as_json=st.booleans(), path=st.sampled_from([LOG_PATH, METRIC_PATH]))
def test_fuzz_random_bytes(fuzzed: Receiver, body: bytes, as_json: bool, path: str) -> None:
    fuzz_check(fuzzed, path, JS if as_json else PB, body)


@fuzz(150)
@given(cut=st.integers(min_value=0, max_value=300), path=st.sampled_from([LOG_PATH, METRIC_PATH]))
def test_fuzz_truncated_protobuf(fuzzed: Receiver, cut: int, path: str) -> None:
    request = pb_logs("f", ["a" * 20]) if path == LOG_PATH else pb_metrics("f", [1, 2])
    body = request.SerializeToString()
    fuzz_check(fuzzed, path, PB, body[: min(cut, len(body))])


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)


JSON_FIELDS = [
    "resourceLogs", "scopeLogs", "logRecords", "traceId", "spanId", "body", "attributes", "intValue",
    "severityNumber", "timeUnixNano", "resourceMetrics", "scopeMetrics", "metrics", "gauge", "sum",
    "histogram", "dataPoints", "asInt", "count", "bucketCounts", "exemplars", "quantileValues",
]  # fmt: skip


@fuzz(200)
@given(
    where=st.sampled_from(
        ["top", "resource", "scope", "record", "body", "metric", "data", "point", "exemplar"]
    ),
    field=st.sampled_from(JSON_FIELDS),
    value=JSON_VALUES,
)
def test_fuzz_wrong_json_types(fuzzed: Receiver, where: str, field: str, value: object) -> None:
    body: dict = {"intValue": "7"}
    record: dict = {"traceId": "ab" * 16, "spanId": "cd" * 8, "body": body, "timeUnixNano": "5"}
    scope_logs: dict = {"logRecords": [record]}
    resource_logs: dict = {"scopeLogs": [scope_logs]}
    logs: dict = {"resourceLogs": [resource_logs]}
    exemplar: dict = {"traceId": "ab" * 16, "asInt": 1}
    point: dict = {"asInt": 3, "timeUnixNano": "5", "exemplars": [exemplar]}
    data: dict = {"dataPoints": [point], "aggregationTemporality": 2}
    metric: dict = {"name": "m", "sum": data}
    resource_metrics: dict = {"scopeMetrics": [{"metrics": [metric]}]}
    metrics: dict = {"resourceMetrics": [resource_metrics]}
    targets = {
        "top": (logs, metrics),
        "resource": (resource_logs, resource_metrics),
        "scope": (scope_logs, resource_metrics["scopeMetrics"][0]),
        "record": (record, metric),
        "body": (body, point),
        "metric": (record, metric),
        "data": (body, data),
        "point": (record, point),
        "exemplar": (body, exemplar),
    }
    for target in targets[where]:
        target[field] = value
    fuzz_check(fuzzed, LOG_PATH, JS, json.dumps(logs).encode())
    fuzz_check(fuzzed, METRIC_PATH, JS, json.dumps(metrics).encode())
