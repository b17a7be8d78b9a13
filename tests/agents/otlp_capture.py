"""A tiny OTLP/HTTP capture server: stores every request it gets, decoded (tests only).

`POST /v1/traces`, `/v1/logs` and `/v1/metrics`, protobuf (`application/x-protobuf`) or JSON
(`application/json`), gzip or not, with a Content-Length or `Transfer-Encoding: chunked`. Each
request is kept as a `Capture`: path, signal, content type, headers, and the body as OTLP/JSON
(protobuf bodies are decoded with the opentelemetry-proto classes and written the way OTLP/JSON
writes them: camelCase names, trace and span ids in hex, 64-bit integers as strings). It answers
200 with an empty Export*ServiceResponse in the request's encoding; any other path gets a 404 (and
is recorded too).

    with OtlpCaptureServer() as otlp:         # otlp.url is the base endpoint, http://127.0.0.1:PORT
        ...
    otlp.signals()                            # {"traces", "logs", "metrics"}
    otlp.spans(), otlp.log_records(), otlp.metrics()   # flattened, each with its resource/scope
"""

from __future__ import annotations

import base64
import json
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from fake_servers import LoopbackServer, read_body
from google.protobuf.json_format import MessageToDict
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)

SIGNALS = {
    "/v1/traces": ("traces", ExportTraceServiceRequest, ExportTraceServiceResponse),
    "/v1/logs": ("logs", ExportLogsServiceRequest, ExportLogsServiceResponse),
    "/v1/metrics": ("metrics", ExportMetricsServiceRequest, ExportMetricsServiceResponse),
}

_HEX_ID_KEYS = {"traceId", "spanId", "parentSpanId"}
_KEPT_HEADERS = ("content-type", "content-encoding", "transfer-encoding", "content-length", "user-agent")


def _hex_ids(value: Any) -> Any:
    """MessageToDict writes bytes as base64; OTLP/JSON writes trace and span ids as hex."""
    if isinstance(value, dict):
        return {
            k: base64.b64decode(v).hex() if k in _HEX_ID_KEYS and isinstance(v, str) else _hex_ids(v)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_hex_ids(v) for v in value]
    return value


def decode(path: str, content_type: str, raw: bytes) -> Any:
    """The body of an OTLP/HTTP request as OTLP/JSON (a dict), whatever its encoding."""
    _, request_class, _ = SIGNALS[path]
    if "json" in content_type:
        return json.loads(raw)
    message = request_class()
    message.ParseFromString(raw)
    return _hex_ids(MessageToDict(message))


@dataclass
class Capture:
    """One OTLP/HTTP request."""

    path: str
    signal: str
    """`traces`, `logs`, `metrics`, or "" for a path that is not OTLP's."""
    content_type: str
    headers: dict[str, str]
    """The headers that say how the body was sent (content type and encoding, length, user agent)."""
    body: Any
    error: str = ""
    at: float = field(default_factory=time.time)

    def to_json(self) -> dict[str, Any]:
        return {
            "path": self.path,
            "signal": self.signal,
            "content_type": self.content_type,
            "headers": self.headers,
            "body": self.body,
            **({"error": self.error} if self.error else {}),
        }


class _Handler(BaseHTTPRequestHandler):
    server: OtlpCaptureServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        path = self.path.split("?", 1)[0]
        content_type = (self.headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
        headers = {k.lower(): v for k, v in self.headers.items() if k.lower() in _KEPT_HEADERS}
        try:
            raw = read_body(self)
        except Exception as exc:
            self.server.record(Capture(path, "", content_type, headers, None, f"unreadable body: {exc}"))
            self._send(400, "application/json", b"{}")
            return
        if path not in SIGNALS:
            self.server.record(Capture(path, "", content_type, headers, None, "not an OTLP path"))
            self._send(404, "application/json", b"{}")
            return
        signal, _, response_class = SIGNALS[path]
        try:
            body, error = decode(path, content_type, raw), ""
        except Exception as exc:
            body, error = base64.b64encode(raw[:4096]).decode(), f"undecodable: {type(exc).__name__}: {exc}"
        self.server.record(Capture(path, signal, content_type, headers, body, error))
        if "json" in content_type:
            self._send(200, "application/json", b"{}")
        else:
            self._send(200, "application/x-protobuf", response_class().SerializeToString())

    def do_GET(self) -> None:
        self._send(404, "application/json", b"{}")

    def _send(self, status: int, content_type: str, data: bytes) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class OtlpCaptureServer(LoopbackServer):
    """Loopback OTLP/HTTP receiver that keeps everything it gets in `captures`."""

    def __init__(self, port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__(_Handler, port, host)
        self.captures: list[Capture] = []

    def record(self, capture: Capture) -> None:
        with self._lock:
            self.captures.append(capture)

    # ------------------------------------------------------------------ reading what came in

    def of(self, signal: str) -> list[Capture]:
        with self._lock:
            return [c for c in self.captures if c.signal == signal and not c.error]

    def signals(self) -> set[str]:
        """The OTLP signals that arrived with at least one record."""
        return {s for s, count in self.counts().items() if count}

    def counts(self) -> dict[str, int]:
        """How many spans, log records and metric data points arrived."""
        return {
            "traces": len(self.spans()),
            "logs": len(self.log_records()),
            "metrics": sum(len(m.get("points", [])) for m in self.metrics()),
        }

    def spans(self) -> list[dict[str, Any]]:
        """Every span, with `resource` (its attributes as a dict) and `scope` (the scope's name) added."""
        return self._flatten("traces", "resourceSpans", "scopeSpans", "spans")

    def log_records(self) -> list[dict[str, Any]]:
        return self._flatten("logs", "resourceLogs", "scopeLogs", "logRecords")

    def metrics(self) -> list[dict[str, Any]]:
        """Every metric, with `points` (its data points, whatever its type) added."""
        out = []
        for metric in self._flatten("metrics", "resourceMetrics", "scopeMetrics", "metrics"):
            data = next(
                (
                    metric[k]
                    for k in ("sum", "gauge", "histogram", "exponentialHistogram", "summary")
                    if k in metric
                ),
                {},
            )
            out.append({**metric, "points": data.get("dataPoints", [])})
        return out

    def _flatten(self, signal: str, resources: str, scopes: str, items: str) -> list[dict[str, Any]]:
        out = []
        for capture in self.of(signal):
            for resource in capture.body.get(resources) or ():
                resource_attrs = attributes(resource.get("resource", {}).get("attributes"))
                for scope in resource.get(scopes) or ():
                    scope_name = (scope.get("scope") or {}).get("name", "")
                    for item in scope.get(items) or ():
                        out.append({**item, "resource": resource_attrs, "scope": scope_name})
        return out

    def dump(self, path: Path) -> None:
        """Every capture, as one JSON file (for debugging)."""
        with self._lock:
            data = [c.to_json() for c in self.captures]
        path.write_text(json.dumps(data, indent=1))


def any_value(value: dict[str, Any] | None) -> Any:
    """The Python value of an OTLP AnyValue (as OTLP/JSON writes it; intValue as number or string)."""
    if not value:
        return None
    if "stringValue" in value:
        return value["stringValue"]
    if "intValue" in value:
        return int(value["intValue"])
    if "doubleValue" in value:
        return float(value["doubleValue"])
    if "boolValue" in value:
        return bool(value["boolValue"])
    if "arrayValue" in value:
        return [any_value(v) for v in value["arrayValue"].get("values", [])]
    if "kvlistValue" in value:
        return attributes(value["kvlistValue"].get("values"))
    if "bytesValue" in value:
        return value["bytesValue"]
    return None


def attributes(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    """OTLP key/value attributes as a dict."""
    return {kv["key"]: any_value(kv.get("value")) for kv in items or ()}
