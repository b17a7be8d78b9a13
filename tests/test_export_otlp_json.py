"""`agenttrace export --format otlp-json`: the demo run's spans, and a run's log records and metric
points, exported by the real CLI and POSTed (`Content-Type: application/json`) to a fresh, real
`agenttrace serve`: its store then holds the same records (ids, names, times in ns, attributes,
events, status)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, free_port, query, run_cli, start_serve
from google.protobuf import json_format
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from agenttrace.export.otlp_json import MAX_LINE_BYTES, any_value
from agenttrace.otlp.convert import as_string

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"
PATHS = {"resourceSpans": "/v1/traces", "resourceLogs": "/v1/logs", "resourceMetrics": "/v1/metrics"}

SPANS = (
    "SELECT s.trace_id, s.span_id, s.parent_span_id, s.name, s.kind, epoch_ns(s.start_time) AS start_ns, "
    "s.ended, s.status_code, s.status_message, s.attributes, s.resource_attributes, s.service_name, "
    "s.scope_name, s.events, s.links, r.Duration, r.TraceState, r.ScopeVersion "
    "FROM spans s JOIN raw_spans r ON r.SpanId = s.span_id AND r.RecordType = 'end' "
    "WHERE s.run_id = $run ORDER BY s.span_id"
)


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}


def post(port: int, path: str, body: bytes) -> dict[str, Any]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}{path}",
        data=body,
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with opener.open(request, timeout=10) as response:
        assert response.status == 200
        return json.loads(response.read() or b"{}")


def stop(server: subprocess.Popen[str]) -> None:
    server.send_signal(signal.SIGTERM)
    _, err = server.communicate(timeout=30)
    assert server.returncode == 0, err


def reimport(lines: list[str], store: Path) -> None:
    """Each line POSTed to a fresh `agenttrace serve` at its signal's path; the server stopped (its
    records sealed into the store)."""
    port = free_port()
    server = start_serve(store, port)
    try:
        for line in lines:
            (top,) = json.loads(line)
            assert post(port, PATHS[top], line.encode()) == {}  # nothing rejected
    finally:
        stop(server)


def export_lines(store: Path, run: str) -> list[str]:
    done = run_cli("export", run, "--format", "otlp-json", "-o", "-", "--store", str(store))
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The failing demo run (its model cuts the answer short)."""
    work = tmp_path_factory.mktemp("otlp")
    store = work / "store"
    done = subprocess.run(
        [str(BIN / "agenttrace"), "run", "--store", str(store), "--run-id", "demo",
         "--objective", str(EXAMPLES / "objective.toml"), "--",
         sys.executable, str(EXAMPLES / "research_agent.py"), "--report", "demo-answer.md",
         "--model", "fake-truncating"],
        capture_output=True, text=True, env=_env(), cwd=work, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 1, done.stderr
    # The derived tables are written after the verdict, by a detached process: wait for them
    # (a test below reads the run through them).
    deadline = time.monotonic() + 60
    while not (store / "derived" / "run_id=demo").is_dir() and time.monotonic() < deadline:
        time.sleep(0.1)
    return store


def test_the_demo_runs_spans_reimported_through_serve_are_the_same_spans(demo: Path, tmp_path: Path) -> None:
    lines = export_lines(demo, "demo")
    assert len(lines) == 1  # spans only: the run has no log records or metric points
    document = json.loads(lines[0])
    spans = [s for r in document["resourceSpans"] for ss in r["scopeSpans"] for s in ss["spans"]]
    assert all(len(s["traceId"]) == 32 and len(s["spanId"]) == 16 for s in spans)  # hex ids
    kept = {a["key"]: a["value"] for s in spans for a in s["attributes"]}
    assert kept["process.pid"].keys() == {"intValue"}  # value types recovered from the stored text
    assert kept["gen_ai.usage.input_tokens"].keys() == {"intValue"}
    assert kept["process.command_args"].keys() == {"arrayValue"}
    assert kept["gen_ai.request.model"] == {"stringValue": "fake-truncating"}

    store = tmp_path / "again"
    reimport(lines, store)
    before = query(demo, SPANS, {"run": "demo"})
    after = query(store, SPANS, {"run": "demo"})  # the run id travels as an attribute
    assert len(after) == len(before) == len(spans) > 20
    assert after == before


@pytest.mark.parametrize("fmt", ["otlp-json", "perfetto"])
def test_a_supervised_runs_truncated_part_is_one_error_line_naming_it_and_no_file(
    demo: Path, tmp_path: Path, fmt: str
) -> None:
    """The part is hashed against the run's manifest first (as `audit` and `report` do), also
    when the run's derived tables are there to read (perfetto reads them): an export without its
    records would look whole."""
    store = tmp_path / "store"
    shutil.copytree(demo, store)
    assert (store / "derived" / "run_id=demo").is_dir()
    part = next((store / "spans" / "run_id=demo").glob("part-*.parquet"))
    part.write_bytes(part.read_bytes()[:-100])
    out = tmp_path / "demo.out"
    done = run_cli("export", "demo", "-f", fmt, "-o", str(out), "--store", str(store))
    assert done.returncode == 2
    (line,) = done.stderr.splitlines()
    assert line.startswith(
        f"Error: run demo: part spans/run_id=demo/{part.name} was changed after the supervisor"
    )
    assert line.endswith("an export would leave its records out (`agenttrace audit demo` says what its "
                         "integrity check finds)")  # fmt: skip
    assert not out.exists() and [p.name for p in tmp_path.iterdir()] == ["store"]
    # Without the derived tables, `last` reads the parts to find the run: the truncated part is
    # skipped there (it was DuckDB's internal error), and the export refuses the run the same way.
    shutil.rmtree(store / "derived")
    done = run_cli("export", "last", "-f", fmt, "-o", str(out), "--store", str(store))
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[-1].startswith(f"Error: run demo: part spans/run_id=demo/{part.name} was changed"), lines
    assert not any("internal error" in x for x in lines) and not out.exists()


def test_log_records_and_metric_points_travel_too(tmp_path: Path) -> None:
    source = tmp_path / "source"
    port = free_port()
    server = start_serve(source, port)
    run = [{"key": "agenttrace.run.id", "value": {"stringValue": "lm"}}]
    trace = "5b8efff798038103d269b633813fc60c"
    try:
        span = {"traceId": trace, "spanId": "051581bf3cb55c13", "name": "agent", "kind": 1,
                "startTimeUnixNano": "1767323040000000000",
                "endTimeUnixNano": "1767323049000000001"}  # fmt: skip
        post(port, "/v1/traces", _request("resourceSpans", "scopeSpans", "spans", [span], run))
        records = [
            {"timeUnixNano": "1767323045000000123", "observedTimeUnixNano": "1767323045000000200",
             "severityNumber": 9, "severityText": "INFO", "body": {"stringValue": "tool ran"},
             "attributes": [{"key": "tokens", "value": {"intValue": "42"}}], "traceId": trace,
             "spanId": "051581bf3cb55c13", "eventName": "tool_result"},
        ]  # fmt: skip
        post(port, "/v1/logs", _request("resourceLogs", "scopeLogs", "logRecords", records, run))
        metrics = [
            {"name": "hw.gpu.utilization", "unit": "1", "gauge": {"dataPoints": [
                {"timeUnixNano": "1767323046000000000", "asDouble": 0.5,
                 "attributes": [{"key": "hw.gpu.index", "value": {"stringValue": "0"}}]}]}},
            {"name": "tokens.used", "sum": {"aggregationTemporality": 2, "isMonotonic": True, "dataPoints": [
                {"timeUnixNano": "1767323047000000000", "startTimeUnixNano": "1767323040000000000",
                 "asDouble": 7.0}]}},
        ]  # fmt: skip
        post(port, "/v1/metrics", _request("resourceMetrics", "scopeMetrics", "metrics", metrics, run))
    finally:
        stop(server)
    lines = export_lines(source, "lm")
    assert [next(iter(json.loads(line))) for line in lines] == [
        "resourceSpans",
        "resourceLogs",
        "resourceMetrics",
    ]
    target = tmp_path / "target"
    reimport(lines, target)
    logs = "SELECT * EXCLUDE (origin) FROM logs WHERE run_id = 'lm' ORDER BY ALL"
    metrics_sql = (
        "SELECT * EXCLUDE (origin, time, start_time), epoch_ns(time) AS t, epoch_ns(start_time) AS st "
        "FROM metrics WHERE run_id = 'lm' ORDER BY name"
    )
    assert query(target, logs) == query(source, logs) != []
    assert query(target, metrics_sql) == query(source, metrics_sql)
    assert len(query(target, metrics_sql)) == 2


def _request(top: str, scopes: str, items: str, records: list[dict[str, Any]], resource: list[dict]) -> bytes:
    return json.dumps(
        {top: [{"resource": {"attributes": resource}, scopes: [{"scope": {"name": "t"}, items: records}]}]}
    ).encode()


@pytest.mark.parametrize(
    ("text", "kind"),
    [
        ("42", "int_value"),
        ("-7", "int_value"),
        ("0.6", "double_value"),
        ("true", "bool_value"),
        ("false", "bool_value"),
        ('["a", "b"]', "array_value"),
        ("[1, 2.5, true]", "array_value"),
        ("[]", "array_value"),
        ("007", "string_value"),  # not how an integer is written: a string that looks like one
        ("1e3", "string_value"),
        ("1_000", "string_value"),
        ("-inf", "string_value"),
        ("nan", "string_value"),
        ('{"pattern": "x"}', "string_value"),  # JSON objects stay strings (tool arguments are)
        ('["a",  "b"]', "string_value"),
        ("[[1]]", "string_value"),
        ("", "string_value"),
        ("True", "string_value"),
    ],
)
def test_a_value_gets_a_type_only_when_that_types_text_is_the_stored_text(text: str, kind: str) -> None:
    value = json_format.ParseDict(any_value(text), AnyValue())
    assert value.WhichOneof("value") == kind
    assert as_string(value) == text  # as the receiver stores it: the same text


def test_a_run_over_16_mib_is_split_into_lines_under_4_mib_that_serve_takes_one_by_one(
    store: Path, make_provider: Any, tmp_path: Path
) -> None:
    """300 spans with a 100 KB attribute each (30 MB of OTLP JSON: over `serve`'s 16 MiB body
    limit as one line): several lines, each under MAX_LINE_BYTES, each POSTed on its own, every
    span back."""
    provider = make_provider(store)
    tracer = provider.get_tracer("big")
    with tracer.start_as_current_span("agent") as root:
        for i in range(300):
            with tracer.start_as_current_span(f"execute_tool t{i}", attributes={"blob": f"{i:06d}" * 17_000}):
                pass
            if i % 100 == 99:
                provider.force_flush()
    provider.force_flush()
    run_id = f"{root.get_span_context().trace_id:032x}"
    lines = export_lines(store, run_id)
    sizes = [len(line.encode()) for line in lines]
    assert sum(sizes) > 16 << 20 and len(lines) > 4 and max(sizes) < MAX_LINE_BYTES
    again = tmp_path / "again"
    reimport(lines, again)
    before = query(store, "SELECT span_id, attributes['blob'] AS blob FROM spans ORDER BY span_id")
    after = query(again, "SELECT span_id, attributes['blob'] AS blob FROM spans ORDER BY span_id")
    assert len(after) == len(before) == 301 and after == before
