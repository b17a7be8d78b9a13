"""How a Python process of the agent sends its spans to the run's receiver (`bootstrap`): OTLP/HTTP
protobuf (the OpenTelemetry encoder's bytes) over one keep-alive `http.client` connection, and the
start records of spans still open.

The receiver is local, so the exporter needs none of `requests`/`urllib3` (about 95 ms of imports
in every process through the OpenTelemetry OTLP/HTTP exporter): one connection, serialised by a
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
import threading
import time
from collections.abc import Sequence
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
            from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans

            body = encode_spans(spans).SerializeToString()
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


__all__ = ["OtlpHttpExporter", "OtlpPendingProcessor"]
