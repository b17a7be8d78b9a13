"""Forwarding (tee): pass OTLP/HTTP payloads on, unchanged, to another OTLP endpoint.

Forwarding never blocks or endangers local storage: payloads wait in a bounded queue (full: the
payload is dropped and counted), one thread sends them, and a failed send is retried a bounded
number of times with backoff (429, 502, 503, 504 and connection errors; other statuses are final).
"""

from __future__ import annotations

import logging
import os
import threading
import time
import urllib.error
import urllib.request
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..errors import ConfigError

log = logging.getLogger("agenttrace")

RETRYABLE = {429, 502, 503, 504}
MAX_QUEUED_BYTES = 64 << 20
MAX_ATTEMPTS = 5
TIMEOUT_S = 10.0


@dataclass(frozen=True)
class Target:
    url: str
    headers: dict[str, str]


def _check_url(url: str, source: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"{source} {url!r} is not an http(s) URL with a host, e.g. http://otel:4318")
    try:
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError:
        raise ConfigError(f"{source} {url!r} has an invalid port") from None
    return url


def traces_url(endpoint: str, source: str) -> str:
    """An OTLP/HTTP base endpoint (`http://host:4318`) as its traces URL; a URL that already has a
    path is used as it is (as OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is)."""
    _check_url(endpoint, source)
    if urlsplit(endpoint).path in ("", "/"):
        return endpoint.rstrip("/") + "/v1/traces"
    return endpoint


def _headers(raw: str | None) -> dict[str, str]:
    """OTEL_EXPORTER_OTLP_HEADERS: `k1=v1,k2=v2`, values URL-encoded."""
    headers: dict[str, str] = {}
    for item in (raw or "").split(","):
        if "=" in item:
            key, value = item.split("=", 1)
            if key.strip():
                headers[key.strip()] = unquote(value.strip())
    return headers


def target_from(
    forward: str | None, environ: os._Environ[str] | dict[str, str] | None = None
) -> Target | None:
    """Where to forward: `--forward URL`, else the standard OTEL_EXPORTER_OTLP_* variables, else
    nowhere. Raises ConfigError for a URL that cannot be used."""
    env = os.environ if environ is None else environ
    headers = {
        **_headers(env.get("OTEL_EXPORTER_OTLP_HEADERS")),
        **_headers(env.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS")),
    }
    if forward:
        return Target(traces_url(forward, "--forward URL"), headers)
    if env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"):
        url = _check_url(env["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"], "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
        return Target(url, headers)
    if env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
        return Target(traces_url(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "OTEL_EXPORTER_OTLP_ENDPOINT"), headers)
    return None


class Forwarder:
    """Sends payloads to one OTLP/HTTP endpoint from its own thread."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.forwarded = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0
        self.last_error: str | None = None
        self._queue: deque[tuple[bytes, str, str | None]] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._sending = False
        host = urlsplit(target.url).hostname or ""
        # A loopback backend is never reached through an HTTP proxy from the environment.
        loopback = host in ("localhost", "127.0.0.1", "::1")
        handlers = [urllib.request.ProxyHandler({})] if loopback else []
        self._opener = urllib.request.build_opener(*handlers)
        self._thread = threading.Thread(target=self._run, name="agenttrace-forward", daemon=True)
        self._thread.start()

    def submit(self, body: bytes, content_type: str, content_encoding: str | None = None) -> None:
        """Queue a payload (never blocks; a full queue drops it and counts it)."""
        with self._cond:
            if self._stopping or self._queued_bytes + len(body) > MAX_QUEUED_BYTES:
                self.dropped += 1
                return
            self._queue.append((body, content_type, content_encoding))
            self._queued_bytes += len(body)
            self._cond.notify()

    @property
    def pending(self) -> int:
        return len(self._queue) + (1 if self._sending else 0)

    def close(self, timeout: float = 10.0) -> None:
        """Send what is queued (waiting at most `timeout` seconds), then stop."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while (self._queue or self._sending) and time.monotonic() < deadline:
                self._cond.wait(0.05)
            self._stopping = True
            self.dropped += len(self._queue)
            self._queue.clear()
            self._cond.notify_all()
        self._thread.join(timeout=max(0.1, deadline - time.monotonic()))

    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if self._stopping and not self._queue:
                    return
                body, content_type, encoding = self._queue.popleft()
                self._queued_bytes -= len(body)
                self._sending = True
            try:
                self._send(body, content_type, encoding)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _send(self, body: bytes, content_type: str, encoding: str | None) -> None:
        headers = {**self.target.headers, "Content-Type": content_type}
        if encoding:
            headers["Content-Encoding"] = encoding
        delay = 0.2
        for attempt in range(1, MAX_ATTEMPTS + 1):
            request = urllib.request.Request(self.target.url, data=body, headers=headers, method="POST")
            try:
                with self._opener.open(request, timeout=TIMEOUT_S) as response:
                    response.read()
                self.forwarded += 1
                return
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} from {self.target.url}"
                retry = exc.code in RETRYABLE
                after = exc.headers.get("Retry-After") if exc.headers else None
                if after and after.isdigit():
                    delay = min(float(after), 10.0)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                error = f"cannot reach {self.target.url}: {reason}"
                retry = True
            if not retry or attempt == MAX_ATTEMPTS or self._stopping:
                break
            self.retries += 1
            time.sleep(delay)
            delay = min(delay * 2, 5.0)
        self.failed += 1
        if self.last_error is None:
            log.warning("agenttrace: forwarding failed: %s (further failures are counted)", error)
        self.last_error = error


class CountingSpanExporter(SpanExporter):
    """Wraps the SDK's OTLP exporter for in-process forwarding: counts what it could not send and
    says so once at shutdown. (The SDK exporter itself retries with backoff, within its timeout.)"""

    def __init__(self, inner: SpanExporter, url: str) -> None:
        self.inner = inner
        self.url = url
        self.forwarded = 0
        self.failed = 0

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        try:
            result = self.inner.export(spans)
        except Exception:  # telemetry never breaks the program it observes
            result = SpanExportResult.FAILURE
        if result is SpanExportResult.SUCCESS:
            self.forwarded += len(spans)
        else:
            self.failed += len(spans)
        return result

    def shutdown(self) -> None:
        self.inner.shutdown()
        if self.failed:
            log.warning("agenttrace: %d span(s) could not be forwarded to %s", self.failed, self.url)

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return self.inner.force_flush(timeout_millis)


def forwarding_exporter(target: Target) -> CountingSpanExporter:
    """The SDK's OTLP/HTTP exporter for `target`, counted."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    return CountingSpanExporter(OTLPSpanExporter(endpoint=target.url, headers=target.headers), target.url)
