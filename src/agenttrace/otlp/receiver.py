"""The OTLP receiver's core, independent of the transport: check, decode, store, forward, answer.

`Receiver.handle_http()` takes what an HTTP request carries and returns the status, headers and
body to answer with; the HTTP and gRPC servers are thin layers over it. A 200 is sent only after
the spans are written to the spool (in the kernel: a crash of the receiver loses none of them);
the spool is fsynced within one flush interval, and runs whose root span has ended are sealed into
Parquet once they have been quiet for a few intervals.
"""

from __future__ import annotations

import hmac
import logging
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from ..errors import AgentTraceError
from ..store.layout import StoreLayout
from ..store.writer import StoreWriter
from .convert import Converted, convert, warm_up
from .decode import (
    JSON,
    PROTOBUF,
    OtlpDecodeError,
    OtlpTooLarge,
    decompress,
    encode_response,
    media_type,
    parse_request,
)
from .forward import Forwarder

log = logging.getLogger("agenttrace")

TRACES_PATH = "/v1/traces"
DEFAULT_MAX_BODY = 16 << 20
DEFAULT_MAX_INFLIGHT = 16
RETRY_AFTER_S = 1
SEAL_AFTER_INTERVALS = 4


@dataclass
class Answer:
    status: int
    body: bytes = b""
    content_type: str = "text/plain; charset=utf-8"
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Counters:
    requests: int = 0
    spans: int = 0
    rejected_spans: int = 0
    rejected_requests: int = 0
    busy: int = 0
    runs: set[str] = field(default_factory=set)
    started: float = field(default_factory=time.monotonic)


class Receiver:
    """Stores OTLP trace exports in one store; thread-safe."""

    def __init__(
        self,
        store: Path,
        *,
        token: str | None = None,
        flush_interval: float = 0.5,
        max_body: int = DEFAULT_MAX_BODY,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        forwarder: Forwarder | None = None,
    ) -> None:
        self.layout = StoreLayout(store)
        self.layout.require_writable()
        self.writer = StoreWriter(self.layout)
        self.token = token
        self.flush_interval = flush_interval
        self.max_body = max_body
        self.forwarder = forwarder
        self.counters = Counters()
        # Arrow's lazy imports (pandas, when installed) take most of a second: pay for them on a
        # thread now rather than in the first client's request, or in `agenttrace run`'s start-up.
        threading.Thread(target=warm_up, name="agenttrace-warm-up", daemon=True).start()
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._lock = threading.Lock()
        self._last_write: dict[str, float] = {}
        self._to_seal: set[str] = set()
        self._stop = threading.Event()
        self._maintainer = threading.Thread(target=self._maintain, name="agenttrace-receiver", daemon=True)
        self._maintainer.start()

    # -- the transports call these ----------------------------------------------------------------
    def authorized(self, authorization: str | None) -> bool:
        if self.token is None:
            return True
        expected = f"Bearer {self.token}"
        return authorization is not None and hmac.compare_digest(authorization.strip(), expected)

    def try_enter(self) -> bool:
        """Take an in-flight slot; False means answer 503 (backpressure)."""
        if self._slots.acquire(blocking=False):
            return True
        with self._lock:
            self.counters.busy += 1
        return False

    def leave(self) -> None:
        self._slots.release()

    def handle_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one OTLP/HTTP request whose body has been read (the caller took a slot)."""
        path = path.split("?", 1)[0]
        if path != TRACES_PATH:
            return self._refuse(404, f"no OTLP endpoint at {path}; send traces to {TRACES_PATH}")
        if method != "POST":
            return self._refuse(405, f"{TRACES_PATH} takes POST", {"Allow": "POST"})
        if not self.authorized(headers.get("authorization")):
            return self._refuse(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        kind = media_type(headers.get("content-type"))
        if kind is None:
            return self._refuse(
                415, f"Content-Type must be {PROTOBUF} or {JSON}, got {headers.get('content-type')!r}"
            )
        encoding = headers.get("content-encoding")
        try:
            raw = decompress(body, encoding, self.max_body)
            request = parse_request(raw, kind)
        except OtlpTooLarge as exc:
            return self._refuse(413, str(exc))
        except OtlpDecodeError as exc:
            return self._refuse(400, str(exc))
        try:
            converted = self.ingest(request)
        except AgentTraceError as exc:
            log.warning("agenttrace: receiver cannot store spans: %s", exc)
            return self._refuse(
                503, f"cannot store spans right now: {exc}", {"Retry-After": str(RETRY_AFTER_S)}
            )
        if self.forwarder is not None:
            self.forwarder.submit(
                body, kind, encoding if encoding and encoding.lower() != "identity" else None
            )
        return Answer(200, encode_response(kind, converted.rejected, converted.message), kind)

    def ingest(self, request: ExportTraceServiceRequest) -> Converted:
        """Store a decoded request. Raises StoreError if the store cannot take it."""
        converted = convert(request)
        if converted.batch.num_rows:
            self.writer.append(converted.batch, sync=False)
        now = time.monotonic()
        with self._lock:
            counters = self.counters
            counters.requests += 1
            counters.spans += converted.accepted
            counters.rejected_spans += converted.rejected
            counters.runs |= converted.run_ids
            for run_id in converted.run_ids:
                self._last_write[run_id] = now
            self._to_seal |= converted.ended_roots
        return converted

    def _refuse(self, status: int, message: str, headers: dict[str, str] | None = None) -> Answer:
        self.count_refusal(status)
        return Answer(status, (message + "\n").encode(), headers=headers or {})

    def count_refusal(self, status: int) -> None:
        with self._lock:
            self.counters.rejected_requests += 1
            if status == 503:
                self.counters.busy += 1

    # -- background: fsync, seal finished runs --------------------------------------------------
    def _maintain(self) -> None:
        while not self._stop.wait(self.flush_interval):
            try:
                self.writer.sync()
                self._seal_quiet_runs()
            except AgentTraceError as exc:
                log.warning("agenttrace: receiver maintenance failed: %s", exc)

    def _seal_quiet_runs(self) -> None:
        quiet_since = time.monotonic() - SEAL_AFTER_INTERVALS * self.flush_interval
        with self._lock:
            ready = [r for r in self._to_seal if self._last_write.get(r, 0) <= quiet_since]
            self._to_seal.difference_update(ready)
        for run_id in ready:
            self.writer.seal_run(run_id)

    def close(self) -> None:
        """Stop maintenance, forward what is queued, seal everything into Parquet."""
        self._stop.set()
        self._maintainer.join(timeout=5)
        if self.forwarder is not None:
            self.forwarder.close()
        self.writer.close()

    def status_line(self) -> str:
        c = self.counters
        elapsed = max(1e-9, time.monotonic() - c.started)
        parts = [
            f"spans {c.spans:,}",
            f"runs {len(c.runs):,}",
            f"{c.spans / elapsed:,.0f} spans/s",
            f"rejected {c.rejected_spans:,} spans, {c.rejected_requests:,} requests",
        ]
        if self.forwarder is not None:
            f = self.forwarder
            parts.append(
                f"forwarded {f.forwarded:,} (failed {f.failed:,}, dropped {f.dropped:,}, "
                f"queued {f.pending:,})"
            )
        return " · ".join(parts)
