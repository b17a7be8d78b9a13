"""How a Python process of the agent sends its spans to the run's receiver (`bootstrap`): OTLP/HTTP
JSON over one keep-alive `http.client` connection, and the start records of spans still open.

The receiver is local, so the exporter needs none of `requests`/`urllib3` (about 95 ms of imports
in every process through the OpenTelemetry OTLP/HTTP exporter), nor protobuf (tens of ms more):
`encode_json` writes what the OpenTelemetry protobuf encoder (`encode_spans`) writes, field for
field, in the OTLP/JSON encoding (hex ids, enums as integers, 64-bit integers as strings), which
the receiver decodes to the same message (a test holds the two equal). One connection, serialised by a
lock (the batch processor and the pending processor share it), re-opened once when the receiver
closed it, and retried while the receiver says it is busy (429, 502, 503, 504, honouring
Retry-After) until the export's deadline; a receiver that is not there fails the batch at once.
It never raises into the program: a batch that could not be sent is counted, and the first is
noted on stderr (through the `agenttrace` logger).
"""

from __future__ import annotations

import base64
import contextlib
import http.client
import json
import logging
import os
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import unquote, urlsplit

from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor
from opentelemetry.sdk.trace import Span as SdkSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

log = logging.getLogger("agenttrace")

EXPORT_DEADLINE_S = 10.0
"""How long one batch may take, retries included."""
RETRYABLE = frozenset({429, 502, 503, 504})
MAX_RETRY_WAIT_S = 2.0


def _value(value: Any) -> dict[str, Any]:
    """An attribute value as OTLP/JSON's AnyValue (the protobuf encoder's `_encode_value`)."""
    if value is None:
        return {}
    if isinstance(value, bool):
        return {"boolValue": value}
    if isinstance(value, str):
        return {"stringValue": value}
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise TypeError("integer out of the int64 range")
        return {"intValue": str(value)}
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return {"doubleValue": "NaN" if value != value else "Infinity" if value > 0 else "-Infinity"}
        return {"doubleValue": value}
    if isinstance(value, bytes):
        return {"bytesValue": base64.b64encode(value).decode()}
    if isinstance(value, Sequence):
        return {"arrayValue": {"values": [_value(v) for v in value]}}
    if isinstance(value, Mapping):
        return {"kvlistValue": {"values": [{"key": str(k), "value": _value(v)} for k, v in value.items()]}}
    raise TypeError(f"invalid attribute value type {type(value).__name__}")


def _attributes(attributes: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    found = []
    for key, value in (attributes or {}).items():
        with contextlib.suppress(TypeError):  # as the protobuf encoder does: that attribute is left out
            found.append({"key": key, "value": _value(value)})
    return found


def _flags(parent: Any) -> int:
    """SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE (0x100), and _IS_REMOTE (0x200) for a remote parent."""
    return 0x100 | (0x200 if parent is not None and parent.is_remote else 0)


def _span(span: ReadableSpan) -> dict[str, Any]:
    context = span.get_span_context()
    encoded: dict[str, Any] = {
        "traceId": f"{context.trace_id:032x}",
        "spanId": f"{context.span_id:016x}",
        "name": span.name,
        "kind": span.kind.value + 1,  # SpanKind.INTERNAL (0) is SPAN_KIND_INTERNAL (1), and so on
        "startTimeUnixNano": str(span.start_time or 0),
        "endTimeUnixNano": str(span.end_time or 0),
        "attributes": _attributes(span.attributes),
        "droppedAttributesCount": span.dropped_attributes,
        "droppedEventsCount": span.dropped_events,
        "droppedLinksCount": span.dropped_links,
        "flags": _flags(span.parent),
    }
    if context.trace_state is not None:
        encoded["traceState"] = ",".join(f"{k}={v}" for k, v in context.trace_state.items())
    if span.parent is not None:
        encoded["parentSpanId"] = f"{span.parent.span_id:016x}"
    if span.events:
        encoded["events"] = [
            {
                "name": e.name,
                "timeUnixNano": str(e.timestamp),
                "attributes": _attributes(e.attributes),
                "droppedAttributesCount": e.dropped_attributes,
            }
            for e in span.events
        ]
    if span.links:
        encoded["links"] = [
            {
                "traceId": f"{link.context.trace_id:032x}",
                "spanId": f"{link.context.span_id:016x}",
                "attributes": _attributes(link.attributes),
                "droppedAttributesCount": link.dropped_attributes,
                "flags": _flags(link.context),
            }
            for link in span.links
        ]
    if span.status is not None:
        encoded["status"] = {"code": span.status.status_code.value}
        if span.status.description:
            encoded["status"]["message"] = span.status.description
    return encoded


def encode_json(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest in OTLP/JSON: spans grouped by resource, then by scope."""
    grouped: dict[Any, dict[Any, list[dict[str, Any]]]] = {}
    for span in spans:
        by_scope = grouped.setdefault(span.resource, {})
        by_scope.setdefault(span.instrumentation_scope or None, []).append(_span(span))
    resource_spans = []
    for resource, by_scope in grouped.items():
        scope_spans = []
        for scope, encoded in by_scope.items():
            entry: dict[str, Any] = {"scope": {}, "spans": encoded}
            if scope is not None:
                entry["scope"] = {"name": scope.name, "attributes": _attributes(scope.attributes)}
                if scope.version:
                    entry["scope"]["version"] = scope.version
                if scope.schema_url:
                    entry["schemaUrl"] = scope.schema_url
            scope_spans.append(entry)
        item: dict[str, Any] = {
            "resource": {"attributes": _attributes(resource.attributes)},
            "scopeSpans": scope_spans,
        }
        if resource.schema_url:
            item["schemaUrl"] = resource.schema_url
        resource_spans.append(item)
    return json.dumps({"resourceSpans": resource_spans}, separators=(",", ":")).encode()


def _headers(environ: os._Environ[str] | dict[str, str]) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_(TRACES_)HEADERS: `key=value,key=value`, values URL-encoded."""
    headers: dict[str, str] = {}
    for name in ("OTEL_EXPORTER_OTLP_HEADERS", "OTEL_EXPORTER_OTLP_TRACES_HEADERS"):
        for item in (environ.get(name) or "").split(","):
            key, sep, value = item.partition("=")
            if sep and key.strip():
                headers[unquote(key.strip())] = unquote(value.strip())
    return headers


class OtlpHttpExporter(SpanExporter):
    """Spans as one OTLP/HTTP JSON request each batch, to `endpoint` (`http://host:port/v1/traces`)."""

    def __init__(self, endpoint: str, deadline: float = EXPORT_DEADLINE_S) -> None:
        parts = urlsplit(endpoint)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"not an OTLP/HTTP endpoint: {endpoint!r}")
        self._https = parts.scheme == "https"
        self._host = parts.hostname
        self._port = parts.port or (443 if self._https else 80)
        self._path = parts.path or "/"
        self._deadline = deadline
        self._headers = {
            **_headers(os.environ),
            "Content-Type": "application/json",
            "Connection": "keep-alive",
        }
        self._conn: http.client.HTTPConnection | None = None
        self._lock = threading.Lock()
        self._shutdown = False
        self.failed = 0
        """Batches that could not be sent."""

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        if self._shutdown or not spans:
            return SpanExportResult.FAILURE if self._shutdown else SpanExportResult.SUCCESS
        try:
            body = encode_json(spans)
            with self._lock:
                error = self._post(body)
        except Exception as exc:  # telemetry never breaks the program
            error = f"{type(exc).__name__}: {exc}"
        if error is None:
            return SpanExportResult.SUCCESS
        self.failed += 1
        if self.failed == 1:
            log.warning("agenttrace: spans could not be sent to the run's receiver (%s)", error)
        return SpanExportResult.FAILURE

    def _post(self, body: bytes) -> str | None:
        """Send one body, retrying; None when the receiver took it, else why not."""
        deadline = time.monotonic() + self._deadline
        reconnected = False
        wait = 0.05
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "the receiver did not answer in time"
            try:
                status, retry_after = self._request(body, left)
            except (OSError, http.client.HTTPException) as exc:
                self._close()
                if not reconnected:  # a keep-alive connection the receiver closed: once more, at once
                    reconnected = True
                    continue
                return f"{type(exc).__name__}: {exc}"  # no receiver: the program is not kept waiting
            if 200 <= status < 300:
                return None
            error = f"HTTP {status}"
            if status not in RETRYABLE:
                return error
            pause = min(retry_after if retry_after is not None else wait, MAX_RETRY_WAIT_S)
            if time.monotonic() + pause >= deadline:
                return error
            time.sleep(pause)
            wait = min(wait * 2, MAX_RETRY_WAIT_S)

    def _request(self, body: bytes, timeout: float) -> tuple[int, float | None]:
        if self._conn is None:
            cls = http.client.HTTPSConnection if self._https else http.client.HTTPConnection
            self._conn = cls(self._host, self._port, timeout=timeout)
        conn = self._conn
        conn.timeout = timeout
        if conn.sock is not None:
            conn.sock.settimeout(timeout)
        token = otel_context.attach(otel_context.set_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY, True))
        try:
            conn.request("POST", self._path, body, self._headers)
            response = conn.getresponse()
            response.read()
        finally:
            otel_context.detach(token)
        if response.will_close:
            self._close()
        retry_after = None
        with contextlib.suppress(TypeError, ValueError):
            retry_after = max(0.0, float(response.getheader("Retry-After") or ""))
        return response.status, retry_after

    def _close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def shutdown(self) -> None:
        self._shutdown = True
        with self._lock:
            self._close()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


class OtlpPendingProcessor(SpanProcessor):
    """Start records over OTLP: every flush interval, spans still open are exported as they are
    (end time 0), which the supervisor's receiver stores as `start` records. So a span that never
    ends (the agent hung, crashed or was killed) is still in the run."""

    def __init__(self, exporter: SpanExporter, flush_interval: float) -> None:
        self._exporter = exporter
        self._interval = flush_interval
        self._open: dict[int, SdkSpan] = {}
        self._sent: set[int] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def on_start(self, span: SdkSpan, parent_context: otel_context.Context | None = None) -> None:
        with self._lock:
            self._open[span.context.span_id] = span  # type: ignore[union-attr]
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="agenttrace-pending", daemon=True)
                self._thread.start()

    def on_end(self, span: ReadableSpan) -> None:
        with self._lock:
            self._open.pop(span.context.span_id, None)  # type: ignore[union-attr]

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            with self._lock:
                fresh = [s for sid, s in self._open.items() if sid not in self._sent]
                self._sent = {sid for sid in self._sent if sid in self._open} | {
                    s.context.span_id  # type: ignore[union-attr]
                    for s in fresh
                }
            if fresh:
                with contextlib.suppress(Exception):
                    self._exporter.export([s._readable_span() for s in fresh])  # type: ignore[attr-defined]

    def shutdown(self) -> None:
        self._stop.set()

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


__all__ = ["OtlpHttpExporter", "OtlpPendingProcessor", "encode_json"]
