"""A run's records as OTLP/JSON, in the OTLP file format (JSON Lines, one export request a line):
the spans as `ExportTraceServiceRequest`s (always first), then the log records as
`ExportLogsServiceRequest`s and the metric points as an `ExportMetricsServiceRequest` when the run
has any; a signal takes several lines when one would be over `MAX_LINE_BYTES` (4 MiB). Each line
is a body that `agenttrace serve` (or any OTLP/HTTP receiver) takes at its signal's path
(`/v1/traces`, `/v1/logs`, `/v1/metrics`) with `Content-Type: application/json`.

The OTLP JSON rules: ids in hex, 64-bit integers as strings, enums as integers, lowerCamelCase
field names. A span that never ended keeps `endTimeUnixNano` 0 (re-imported, it is still
unfinished).

The store keeps attribute values as text (`store.schema`), so their types are recovered from it:
`true`/`false` as booleans, an integer or a float written as Python writes it as that number, a
JSON array of such values as an array, and anything else as a string; a value is given a type only
when that type's text is exactly the stored text, so importing the export gives the same store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

SPAN_KINDS = {"Unspecified": 0, "Internal": 1, "Server": 2, "Client": 3, "Producer": 4, "Consumer": 5}
STATUS_CODES = {"Unset": 0, "Ok": 1, "Error": 2}


@dataclass
class OtlpCounts:
    spans: int
    log_records: int
    data_points: int


def _scalar(value: Any) -> dict[str, Any] | None:
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float) and math.isfinite(value):
        return {"doubleValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    return None


def any_value(text: str) -> dict[str, Any]:
    """An OTLP JSON AnyValue for a stored attribute value (see the module docstring)."""
    if text in ("true", "false"):
        return {"boolValue": text == "true"}
    if text[:1].isdigit() or text[:1] == "-":
        try:
            number: int | float = int(text)
        except ValueError:
            try:
                number = float(text)
            except ValueError:
                return {"stringValue": text}
        if str(number) == text:
            return _scalar(number) or {"stringValue": text}
        return {"stringValue": text}
    if text.startswith("[") and text.endswith("]"):
        try:
            items = json.loads(text)
        except ValueError:
            return {"stringValue": text}
        values = [_scalar(item) for item in items] if isinstance(items, list) else [None]
        if all(v is not None for v in values) and json.dumps(items, ensure_ascii=False) == text:
            return {"arrayValue": {"values": values}}
    return {"stringValue": text}


def _attributes(pairs: dict[str, str] | None) -> list[dict[str, Any]]:
    return [{"key": k, "value": any_value(v if v is not None else "")} for k, v in (pairs or {}).items()]


def _resource(attributes: dict[str, str] | None, service: str | None) -> dict[str, str]:
    found = dict(attributes or {})
    if service and "service.name" not in found:
        found = {"service.name": service, **found}
    return found


def spans_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of `export_otlp_spans` as an ExportTraceServiceRequest (JSON)."""
    resources: dict[tuple[tuple[str, str], ...], dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for row in rows:
        resource = tuple(_resource(row["resource_attributes"], row["service_name"]).items())
        scope = (row["scope_name"] or "", row["scope_version"] or "")
        start = row["start_ns"]
        span: dict[str, Any] = {
            "traceId": row["trace_id"],
            "spanId": row["span_id"],
            "parentSpanId": row["parent_span_id"] or "",
            "name": row["name"],
            "kind": SPAN_KINDS.get(row["kind"] or "", 0),
            "startTimeUnixNano": str(start),
            "endTimeUnixNano": str(start + row["duration_ns"]) if row["duration_ns"] is not None else "0",
            "attributes": _attributes(row["attributes"]),
            "status": {"code": STATUS_CODES.get(row["status_code"] or "", 0)},
        }
        if row["trace_state"]:
            span["traceState"] = row["trace_state"]
        if row["status_message"]:
            span["status"]["message"] = row["status_message"]
        if row["events"]:
            span["events"] = [
                {
                    "timeUnixNano": str(e["time_ns"]),
                    "name": e["name"],
                    "attributes": _attributes(e["attributes"]),
                }
                for e in row["events"]
            ]
        if row["links"]:
            span["links"] = [
                {
                    "traceId": link["TraceId"],
                    "spanId": link["SpanId"],
                    "traceState": link["TraceState"] or "",
                    "attributes": _attributes(link["Attributes"]),
                }
                for link in row["links"]
            ]
        resources.setdefault(resource, {}).setdefault(scope, []).append(span)
    return {
        "resourceSpans": [
            {
                "resource": {"attributes": _attributes(dict(resource))},
                "scopeSpans": [
                    {"scope": {"name": name, "version": version}, "spans": spans}
                    for (name, version), spans in scopes.items()
                ],
            }
            for resource, scopes in resources.items()
        ]
    }


def logs_request(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Rows of `export_otlp_logs` as an ExportLogsServiceRequest (JSON). A body is a string, as
    the store keeps it."""
    resources: dict[tuple[tuple[str, str], ...], dict[tuple[str, str], list[dict[str, Any]]]] = {}
    for row in rows:
        resource = tuple(_resource(row["resource_attributes"], row["service_name"]).items())
        scope = (row["scope_name"] or "", row["scope_version"] or "")
        record: dict[str, Any] = {
            "timeUnixNano": str(row["time_ns"] or 0),
            "observedTimeUnixNano": str(row["observed_ns"] or 0),
            "severityNumber": row["severity_number"] or 0,
            "severityText": row["severity_text"] or "",
            "body": {"stringValue": row["body"] or ""},
            "attributes": _attributes(row["attributes"]),
            "flags": row["flags"] or 0,
        }
        if row["trace_id"]:
            record["traceId"] = row["trace_id"]
        if row["span_id"]:
            record["spanId"] = row["span_id"]
        if row["event_name"]:
            record["eventName"] = row["event_name"]
        resources.setdefault(resource, {}).setdefault(scope, []).append(record)
    return {
        "resourceLogs": [
            {
                "resource": {"attributes": _attributes(dict(resource))},
                "scopeLogs": [
                    {"scope": {"name": name, "version": version}, "logRecords": records}
                    for (name, version), records in scopes.items()
                ],
            }
            for resource, scopes in resources.items()
        ]
    }


def metrics_request(table: Any) -> tuple[dict[str, Any], int]:
    """Sample rows (the store's sample schema) as an ExportMetricsServiceRequest (JSON), through
    `gpu.samples.to_otlp` (gauges and sums; other metric types are left out), and its point count."""
    from google.protobuf import json_format
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    from ..gpu.samples import to_otlp

    request = ExportMetricsServiceRequest()
    request.ParseFromString(to_otlp(table))
    points = sum(
        len(m.gauge.data_points) + len(m.sum.data_points)
        for rm in request.resource_metrics
        for sm in rm.scope_metrics
        for m in sm.metrics
    )
    return json_format.MessageToDict(request, use_integers_for_enums=True), points


MAX_LINE_BYTES = 4 << 20
"""A request line is split until it is under this (4 MiB), so that each line is a body a receiver
takes (`agenttrace serve` takes up to 16 MiB); a single record over it stays alone on its line."""


def _dumps(document: dict[str, Any]) -> str:
    return json.dumps(document, ensure_ascii=False, separators=(",", ":"))


def request_lines(
    rows: list[dict[str, Any]], request: Callable[[list[dict[str, Any]]], dict[str, Any]]
) -> list[str]:
    """`request(rows)` as one line, or as several (the rows split in halves, in order) while a line
    is over MAX_LINE_BYTES."""
    line = _dumps(request(rows))
    if len(rows) < 2 or len(line.encode("utf-8")) < MAX_LINE_BYTES:
        return [line]
    half = len(rows) // 2
    return request_lines(rows[:half], request) + request_lines(rows[half:], request)


def to_otlp_json(db: Any, run_id: str) -> tuple[str, OtlpCounts]:
    """The run's spans, log records and metric points as OTLP JSON Lines (`db`: a `Database`), each
    signal in as many request lines as keep each under MAX_LINE_BYTES."""
    spans = db.report("export_otlp_spans", run_id=run_id)
    lines = request_lines(spans, spans_request)
    logs = db.report("export_otlp_logs", run_id=run_id)
    if logs:
        lines += request_lines(logs, logs_request)
    from .. import queries
    from .tables import arrow

    samples = arrow(db, queries.load("reports/export_otlp_samples.sql"), {"run_id": run_id})
    points = 0
    if samples.num_rows:
        document, points = metrics_request(samples)
        if points:
            lines.append(json.dumps(document, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines) + "\n", OtlpCounts(len(spans), len(logs), points)


__all__ = [
    "MAX_LINE_BYTES",
    "OtlpCounts",
    "any_value",
    "logs_request",
    "metrics_request",
    "request_lines",
    "spans_request",
    "to_otlp_json",
]
