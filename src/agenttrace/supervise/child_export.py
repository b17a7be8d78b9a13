"""How a Python process of the agent sends its spans to the run's receiver (`bootstrap`): OTLP/HTTP
protobuf over one keep-alive `http.client` connection, and the start records of spans still open.

The receiver is local, so the exporter needs none of `requests`/`urllib3` (about 95 ms of imports
in every process through the OpenTelemetry OTLP/HTTP exporter), nor the protobuf runtime (tens of
ms more): `encode` writes the bytes of the message the OpenTelemetry encoder (`encode_spans`)
makes, field for field, in protobuf's wire format (a test holds the two equal), faster than the
encoder builds its message; the receiver decodes it in C (OTLP/JSON, the other way to avoid the
import, costs the receiver some 200 µs a span to decode). One connection, serialised by a
lock (the batch processor and the pending processor share it), re-opened once when the receiver
closed it, and retried while the receiver says it is busy (429, 502, 503, 504, honouring
Retry-After) until the export's deadline; a receiver that is not there fails the batch at once.
It never raises into the program: a batch that could not be sent is counted, and the first is
noted on stderr (through the `agenttrace` logger).
"""

from __future__ import annotations

import contextlib
import http.client
import logging
import os
import struct
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


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # a negative int64 is ten bytes, as protobuf writes it
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len(field: int, payload: bytes) -> bytes:
    """A length-delimited field (a string, bytes, or an embedded message)."""
    return _varint(field << 3 | 2) + _varint(len(payload)) + payload


def _str(field: int, text: str | None) -> bytes:
    return _len(field, text.encode("utf-8", "surrogatepass")) if text else b""


def _uint(field: int, n: int | None) -> bytes:
    return _varint(field << 3) + _varint(n) if n else b""


def _fixed64(field: int, n: int | None) -> bytes:
    return _varint(field << 3 | 1) + struct.pack("<Q", n) if n else b""


def _fixed32(field: int, n: int) -> bytes:
    return _varint(field << 3 | 5) + struct.pack("<I", n) if n else b""


def _any(value: Any) -> bytes:
    """AnyValue (the protobuf encoder's `_encode_value`)."""
    if value is None:
        return b""
    if isinstance(value, bool):
        return _varint(2 << 3) + _varint(int(value))
    if isinstance(value, str):
        return _len(1, value.encode("utf-8", "surrogatepass"))
    if isinstance(value, int):
        if not -(2**63) <= value < 2**63:
            raise ValueError("integer out of the int64 range")
        return _varint(3 << 3) + _varint(value)
    if isinstance(value, float):
        return _varint(4 << 3 | 1) + struct.pack("<d", value)
    if isinstance(value, bytes):
        return _len(7, value)
    if isinstance(value, Sequence):
        return _len(5, b"".join(_len(1, _any(v)) for v in value))
    if isinstance(value, Mapping):
        return _len(6, b"".join(_len(1, _key_value(str(k), v)) for k, v in value.items()))
    raise ValueError(f"invalid attribute value type {type(value).__name__}")


def _key_value(key: str, value: Any) -> bytes:
    return _str(1, key) + _len(2, _any(value))


def _attributes(field: int, attributes: Mapping[str, Any] | None) -> bytes:
    out = []
    for key, value in (attributes or {}).items():
        with contextlib.suppress(ValueError):  # as the protobuf encoder does: that attribute is left out
            out.append(_len(field, _key_value(key, value)))
    return b"".join(out)


def _flags(parent: Any) -> int:
    """SPAN_FLAGS_CONTEXT_HAS_IS_REMOTE (0x100), and _IS_REMOTE (0x200) for a remote parent."""
    return 0x100 | (0x200 if parent is not None and parent.is_remote else 0)


def _span(span: ReadableSpan) -> bytes:
    context = span.get_span_context()
    out = [
        _len(1, context.trace_id.to_bytes(16, "big")),
        _len(2, context.span_id.to_bytes(8, "big")),
    ]
    if context.trace_state is not None:
        out.append(_str(3, ",".join(f"{k}={v}" for k, v in context.trace_state.items())))
    if span.parent is not None:
        out.append(_len(4, span.parent.span_id.to_bytes(8, "big")))
    out += [
        _str(5, span.name),
        _uint(6, span.kind.value + 1),  # SpanKind.INTERNAL (0) is SPAN_KIND_INTERNAL (1), and so on
        _fixed64(7, span.start_time),
        _fixed64(8, span.end_time),
        _attributes(9, span.attributes),
        _uint(10, span.dropped_attributes),
    ]
    for event in span.events:
        body = _fixed64(1, event.timestamp) + _str(2, event.name) + _attributes(3, event.attributes)
        out.append(_len(11, body + _uint(4, event.dropped_attributes)))
    out.append(_uint(12, span.dropped_events))
    for link in span.links:
        body = _len(1, link.context.trace_id.to_bytes(16, "big")) + _len(
            2, link.context.span_id.to_bytes(8, "big")
        )
        body += (
            _attributes(4, link.attributes)
            + _uint(5, link.dropped_attributes)
            + _fixed32(6, _flags(link.context))
        )
        out.append(_len(13, body))
    out.append(_uint(14, span.dropped_links))
    if span.status is not None:
        out.append(_len(15, _str(2, span.status.description) + _uint(3, span.status.status_code.value)))
    out.append(_fixed32(16, _flags(span.parent)))
    return b"".join(out)


def encode(spans: Sequence[ReadableSpan]) -> bytes:
    """An ExportTraceServiceRequest in protobuf's wire format: spans grouped by resource, then by
    scope, as the OpenTelemetry encoder (`encode_spans`) groups them."""
    grouped: dict[Any, dict[Any, list[bytes]]] = {}
    for span in spans:
        by_scope = grouped.setdefault(span.resource, {})
        by_scope.setdefault(span.instrumentation_scope or None, []).append(_len(2, _span(span)))
    out = []
    for resource, by_scope in grouped.items():
        scopes = []
        for scope, encoded in by_scope.items():
            head = b""
            if scope is not None:
                head = _str(1, scope.name) + _str(2, scope.version) + _attributes(3, scope.attributes)
            tail = _str(3, scope.schema_url) if scope is not None else b""
            scopes.append(_len(2, _len(1, head) + b"".join(encoded) + tail))
        item = _len(1, _attributes(1, resource.attributes)) + b"".join(scopes) + _str(3, resource.schema_url)
        out.append(_len(1, item))
    return b"".join(out)


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
    """Spans as one OTLP/HTTP protobuf request each batch, to `endpoint` (`http://host:port/v1/traces`)."""

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
            "Content-Type": "application/x-protobuf",
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
            body = encode(spans)
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


__all__ = ["OtlpHttpExporter", "OtlpPendingProcessor", "encode"]
