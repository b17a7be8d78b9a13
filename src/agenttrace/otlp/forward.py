"""Forwarding (tee): pass OTLP/HTTP payloads on, unchanged, to another OTLP endpoint.

All three signals are forwarded, each to its own URL (`Target.url_for`): the base endpoint's
`/v1/traces`, `/v1/logs` and `/v1/metrics`, or the signal's own variable
(OTEL_EXPORTER_OTLP_<SIGNAL>_ENDPOINT, used as it is, with OTEL_EXPORTER_OTLP_<SIGNAL>_HEADERS).
A `--forward` URL with a path ending in `/v1/traces` sends logs and metrics to the sibling paths;
one with another path takes traces only.

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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export import SpanExporter, SpanExportResult

from ..errors import ConfigError

log = logging.getLogger("agenttrace")

RETRYABLE = {429, 502, 503, 504}
MAX_QUEUED_BYTES = 64 << 20
MAX_ATTEMPTS = 5
TIMEOUT_S = 10.0


SIGNALS = ("traces", "logs", "metrics")


@dataclass(frozen=True)
class Target:
    url: str
    """Where traces go."""
    headers: dict[str, str]
    others: dict[str, tuple[str, dict[str, str]]] = field(default_factory=dict)
    """Where logs and metrics go (URL and headers), by signal name; a signal not here is not
    forwarded."""

    def url_for(self, signal: str) -> tuple[str, dict[str, str]] | None:
        """The URL and headers a signal's payloads go to; None: not forwarded."""
        if signal == "traces":
            return self.url, self.headers
        return self.others.get(signal)


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
    return signal_url(endpoint, source, "traces") or endpoint


def signal_url(endpoint: str, source: str, signal: str) -> str | None:
    """A base endpoint's URL for one signal: `<base>/v1/<signal>`. A URL with a path is used as
    it is for traces; for logs and metrics its `/v1/traces` becomes `/v1/<signal>`, and any other
    path gives None (not forwarded)."""
    _check_url(endpoint, source)
    path = urlsplit(endpoint).path
    if path in ("", "/"):
        return endpoint.rstrip("/") + f"/v1/{signal}"
    if signal == "traces":
        return endpoint
    trimmed = endpoint.rstrip("/")
    if trimmed.endswith("/v1/traces"):
        return trimmed[: -len("traces")] + signal
    return None


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
    common = _headers(env.get("OTEL_EXPORTER_OTLP_HEADERS"))
    targets: dict[str, tuple[str, dict[str, str]]] = {}
    for signal in SIGNALS:
        name = signal.upper()
        headers = {**common, **_headers(env.get(f"OTEL_EXPORTER_OTLP_{name}_HEADERS"))}
        url: str | None = None
        if forward:
            url = signal_url(forward, "--forward URL", signal)
        elif env.get(f"OTEL_EXPORTER_OTLP_{name}_ENDPOINT"):
            variable = f"OTEL_EXPORTER_OTLP_{name}_ENDPOINT"
            url = _check_url(env[variable], variable)
        elif env.get("OTEL_EXPORTER_OTLP_ENDPOINT"):
            url = signal_url(env["OTEL_EXPORTER_OTLP_ENDPOINT"], "OTEL_EXPORTER_OTLP_ENDPOINT", signal)
        if url is not None:
            targets[signal] = (url, headers)
    traces = targets.pop("traces", None)
    if traces is None:  # forwarding is set up by a traces (or common) endpoint
        return None
    return Target(traces[0], traces[1], targets)


class Forwarder:
    """Sends payloads to one OTLP/HTTP endpoint from its own thread."""

    def __init__(self, target: Target) -> None:
        self.target = target
        self.forwarded = 0
        self.failed = 0
        self.dropped = 0
        self.retries = 0
        self.last_error: str | None = None
        self.screen: Callable[[bytes, str, str | None, str], bool] | None = None
        """Told each payload (body, content type, encoding, signal) before it is sent: True keeps
        it back (counted in `withheld`). `agenttrace run` withholds an agent's payload that poses
        as agenttrace's own records (`audit.evaluations.names_reserved_key`)."""
        self.withheld = 0
        self._queue: deque[tuple[bytes, str, str | None, str, dict[str, str], str]] = deque()
        self._queued_bytes = 0
        self._cond = threading.Condition()
        self._stopping = False
        self._sending = False
        # A loopback backend is never reached through an HTTP proxy from the environment.
        self._direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        self._opener = urllib.request.build_opener()
        self._thread = threading.Thread(target=self._run, name="agenttrace-forward", daemon=True)
        self._thread.start()

    def submit(
        self, body: bytes, content_type: str, content_encoding: str | None = None, *, signal: str = "traces"
    ) -> None:
        """Queue a payload of a signal (never blocks; a full queue drops it and counts it). A
        signal the target has no URL for is not forwarded (nor counted)."""
        where = self.target.url_for(signal)
        if where is None:
            return
        with self._cond:
            if self._stopping or self._queued_bytes + len(body) > MAX_QUEUED_BYTES:
                self.dropped += 1
                return
            self._queue.append((body, content_type, content_encoding, *where, signal))
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
                body, content_type, encoding, url, headers, signal = self._queue.popleft()
                self._queued_bytes -= len(body)
                self._sending = True
            try:
                if self._withhold(body, content_type, encoding, signal):
                    continue
                self._send(body, content_type, encoding, url, headers)
            finally:
                with self._cond:
                    self._sending = False
                    self._cond.notify_all()

    def _withhold(self, body: bytes, content_type: str, encoding: str | None, signal: str) -> bool:
        try:
            withhold = self.screen is not None and self.screen(body, content_type, encoding, signal)
        except Exception:  # a screen that fails holds the payload back: it fails closed
            withhold = True
        if withhold:
            if not self.withheld:
                log.warning(
                    "agenttrace: an agent's OTLP payload names agenttrace.origin, reserved for "
                    "agenttrace's own records: stored as the agent's, not forwarded"
                )
            self.withheld += 1
        return withhold

    def _send(
        self, body: bytes, content_type: str, encoding: str | None, url: str, target_headers: dict[str, str]
    ) -> None:
        headers = {**target_headers, "Content-Type": content_type}
        if encoding:
            headers["Content-Encoding"] = encoding
        delay = 0.2
        loopback = (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")
        opener = self._direct if loopback else self._opener
        for attempt in range(1, MAX_ATTEMPTS + 1):
            request = urllib.request.Request(url, data=body, headers=headers, method="POST")
            try:
                with opener.open(request, timeout=TIMEOUT_S) as response:
                    response.read()
                self.forwarded += 1
                return
            except urllib.error.HTTPError as exc:
                error = f"HTTP {exc.code} from {url}"
                retry = exc.code in RETRYABLE
                after = exc.headers.get("Retry-After") if exc.headers else None
                if after and after.isdigit():
                    delay = min(float(after), 10.0)
            except (urllib.error.URLError, OSError, TimeoutError) as exc:
                reason = getattr(exc, "reason", exc)
                error = f"cannot reach {url}: {reason}"
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


# The SDK's default export timeout is 10 s, retries included, and a program's exit waits for its
# last export: with a backend down, a run's end (or an in-process agent's exit) waited 10-20 s.
DEFAULT_EXPORT_TIMEOUT_S = 3.0


def export_timeout(environ: Mapping[str, str] | None = None) -> float | None:
    """None (the SDK reads its variables) when the user set an OTLP timeout, else 3 s."""
    env = os.environ if environ is None else environ
    if env.get("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT") or env.get("OTEL_EXPORTER_OTLP_TIMEOUT"):
        return None
    return DEFAULT_EXPORT_TIMEOUT_S


def forwarding_exporter(target: Target) -> CountingSpanExporter:
    """The SDK's OTLP/HTTP exporter for `target`, counted, bounded by `export_timeout()`."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    exporter = OTLPSpanExporter(endpoint=target.url, headers=target.headers, timeout=export_timeout())
    return CountingSpanExporter(exporter, target.url)
