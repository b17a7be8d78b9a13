"""The OTLP receiver's core, independent of the transport: check, decode, store, forward, answer.

It takes all three OTLP signals: traces (`/v1/traces`, stored as span records), logs (`/v1/logs`,
log records) and metrics (`/v1/metrics`, data points in `samples/`), each the same way.
`Receiver.handle_http()` takes what an HTTP request carries and returns the status, headers and
body to answer with; the HTTP and gRPC servers are thin layers over it (`precheck()` lets the HTTP
server refuse a request from its head alone, before reading the body). A 200 is sent only after
the records are written to the spool (in the kernel: a crash of the receiver loses none of them);
the spool is fsynced within one flush interval, and runs whose root span has ended are sealed into
Parquet (every kind of record of the run) once they have been quiet for a few intervals. Log
records and data points are linked to runs as logs_metrics.py says.

Bounds, whatever clients send (a run that never ends, or thousands of them, costs no more):
- open runs: the store writer keeps at most `max_open_runs` spools open (a run's spans, its log
  records and its data points are one spool each, 2 descriptors each) and seals the least recently
  written one into Parquet to open another (see store/writer.py);
  `descriptor_budget()` sizes it and the HTTP connection limit from the soft RLIMIT_NOFILE, so
  that open descriptors stay under FD_RESERVE + max_inflight + 2 x max_open_runs + max_connections
  (64 + 16 + 512 + 256 = 848 with the defaults, reached from a limit of 1,104 up; less below);
- runs waiting to be sealed once quiet: at most MAX_PENDING_SEALS (beyond, the oldest is left to
  the writer's own sealing: nothing is lost, only sealed later);
- `Counters.runs` counts distinct runs seen, remembering the last MAX_REMEMBERED_RUNS ids (a run
  seen again after that is counted again); agent sessions are remembered with their run for the
  last `logs_metrics.MAX_SESSIONS`;
- requests being decoded and stored: `max_inflight`; each body at most `max_body` bytes. Those
  that must seal more than UNGATED_EVICTIONS other runs to open their own (past the writer's
  bound: thousands of runs that never end) get half of them at most; beyond, 503 with
  Retry-After: other clients, whether writing to open runs or starting one, keep the other half.
The maintenance thread (fsync, seal) logs every failure and goes on: it never dies.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
import resource
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from ..errors import AgentTraceError, ConfigError
from ..store.layout import StoreLayout
from ..store.writer import DEFAULT_MAX_OPEN_RUNS, MIN_OPEN_RUNS, PartWritten, StoreWriter
from . import logs_metrics
from .convert import Converted, convert, warm_up
from .decode import (
    JSON,
    LOGS,
    METRICS,
    PROTOBUF,
    SIGNALS,
    TRACES,
    OtlpDecodeError,
    OtlpTooLarge,
    Signal,
    decompress,
    encode_response,
    media_type,
    parse_request,
)
from .forward import Forwarder
from .logs_metrics import SessionRuns, convert_logs, convert_metrics

log = logging.getLogger("agenttrace")

TRACES_PATH = TRACES.path
PATHS = ", ".join(f"{s.name} to {s.path}" for s in SIGNALS.values())
DEFAULT_MAX_BODY = 16 << 20
DEFAULT_MAX_INFLIGHT = 16
RETRY_AFTER_S = 1
SEAL_AFTER_INTERVALS = 4
MAX_PENDING_SEALS = 4096
UNGATED_EVICTIONS = 16
"""A request that would seal more runs than this to open its own takes one of the `opening`
slots (half of `max_inflight`); 503 when none is free."""
MAX_REMEMBERED_RUNS = 16_384
CLOSE_WAIT_S = 5.0
"""How long `close()` waits for requests being stored to finish."""
FD_RESERVE = 64
"""Descriptors left to the process itself: Python and its libraries, the listening sockets, gRPC,
the forwarder's connection, a part being written or a segment being read or fsynced."""
MAX_CONNECTIONS = 256
MIN_CONNECTIONS = 4


@dataclass(frozen=True)
class DescriptorBudget:
    """How many runs the writer keeps open and how many connections the HTTP server takes."""

    max_open_runs: int
    max_connections: int


def descriptor_budget(
    soft_limit: int | None = None, max_inflight: int = DEFAULT_MAX_INFLIGHT
) -> DescriptorBudget:
    """Split the soft RLIMIT_NOFILE: after FD_RESERVE and one descriptor per request being stored,
    half of what is left for open runs (2 each), a quarter for connections; at most
    DEFAULT_MAX_OPEN_RUNS and MAX_CONNECTIONS."""
    if soft_limit is None:
        soft_limit, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        if soft_limit == resource.RLIM_INFINITY:
            soft_limit = 1 << 20
    spare = max(0, soft_limit - FD_RESERVE - max_inflight)
    return DescriptorBudget(
        max_open_runs=max(MIN_OPEN_RUNS, min(DEFAULT_MAX_OPEN_RUNS, spare // 4)),
        max_connections=max(MIN_CONNECTIONS, min(MAX_CONNECTIONS, spare // 4)),
    )


def check_token(token: str | None, source: str = "the bearer token") -> str | None:
    """The token as given, or ConfigError when no client could ever send it: blank, or not
    printable ASCII without spaces (it travels in an HTTP header or gRPC metadata)."""
    if token is None:
        return None
    if not token.strip():
        raise ConfigError(f"{source} is blank: no client could authenticate with it")
    if not all("!" <= c <= "~" for c in token):
        raise ConfigError(f"{source} must be printable ASCII without spaces (it is sent in an HTTP header)")
    return token


def _header_bytes(text: str) -> bytes:
    """Header text back as the bytes that came in (HTTP headers are decoded as Latin-1)."""
    try:
        return text.encode("latin-1")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace")


Route = Callable[[str, bytes], tuple[int, dict[str, Any]]]
"""Answers a request to one of a receiver's other paths: (method, body) -> (status, JSON object)."""


def _as_run(converted: Converted, run_id: str) -> Converted:
    """Every record of a request as one run's (the receiver of a supervised run)."""
    batch = converted.batch
    column = batch.schema.get_field_index("RunId")
    if batch.num_rows and column >= 0:
        batch = batch.set_column(column, "RunId", pa.array([run_id] * batch.num_rows, pa.string()))
    # The supervisor seals its run when it ends: roots the agent ends (a sub-agent's, say) do not.
    runs = {run_id} if batch.num_rows else set()
    return dataclasses.replace(converted, batch=batch, run_ids=runs, ended_roots=set())


class RunsCrowded(AgentTraceError):
    """A request would seal many runs to open its own while half the slots already do (503)."""


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
    log_records: int = 0
    rejected_log_records: int = 0
    data_points: int = 0
    rejected_data_points: int = 0
    rejected_requests: int = 0
    busy: int = 0
    runs: int = 0
    """Distinct runs seen (approximately: see MAX_REMEMBERED_RUNS)."""
    started: float = field(default_factory=time.monotonic)


def _warm_up() -> None:
    warm_up()
    logs_metrics.warm_up()


class Receiver:
    """Stores OTLP exports (traces, logs, metrics) in one store; thread-safe."""

    def __init__(
        self,
        store: Path,
        *,
        token: str | None = None,
        flush_interval: float = 0.5,
        max_body: int = DEFAULT_MAX_BODY,
        max_inflight: int = DEFAULT_MAX_INFLIGHT,
        forwarder: Forwarder | None = None,
        max_open_runs: int | None = None,
        run_id: str | None = None,
        on_part: Callable[[PartWritten], None] | None = None,
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        """`run_id`: the receiver of one supervised run (`agenttrace run`): every record it takes
        (span, log record, data point) is that run's, whatever run the sender named. `on_part`:
        told of every part written. `routes`: other paths it answers (the run's claim desk), each
        a function of the method and the body returning the status and a JSON object."""
        self.token = check_token(token)
        self.run_id = run_id
        self.routes = dict(routes or {})
        self._token = None if token is None else token.encode("ascii")
        self.layout = StoreLayout(store)
        self.layout.require_writable()
        self.budget = descriptor_budget(max_inflight=max_inflight)
        self.writer = StoreWriter(
            self.layout, max_open_runs=max_open_runs or self.budget.max_open_runs, on_part=on_part
        )
        self.flush_interval = flush_interval
        self.max_body = max_body
        self.forwarder = forwarder
        self.counters = Counters()
        self.sessions = SessionRuns()
        # Arrow's lazy imports (pandas, when installed) take most of a second: pay for them on a
        # thread now rather than in the first client's request, or in `agenttrace run`'s start-up.
        threading.Thread(target=_warm_up, name="agenttrace-warm-up", daemon=True).start()
        self.max_inflight = max_inflight
        self._slots = threading.BoundedSemaphore(max_inflight)
        self._openers = threading.BoundedSemaphore(max(1, max_inflight // 2))
        self._closing = False
        self._lock = threading.Lock()
        self._to_seal: OrderedDict[str, float] = OrderedDict()  # ended root -> last write
        self._seen: OrderedDict[str, None] = OrderedDict()  # recent run ids, for Counters.runs
        self._stop = threading.Event()
        self._maintainer = threading.Thread(target=self._maintain, name="agenttrace-receiver", daemon=True)
        self._maintainer.start()

    # -- the transports call these ----------------------------------------------------------------
    def authorized(self, authorization: str | None) -> bool:
        """Whether an Authorization value carries the token (`Bearer <token>`; the scheme in any
        case, RFC 7235). Anything malformed is simply not authorized."""
        if self._token is None:
            return True
        if not authorization:
            return False
        parts = authorization.split(None, 1)
        if len(parts) != 2 or parts[0].lower() != "bearer":
            return False
        return hmac.compare_digest(_header_bytes(parts[1].strip()), self._token)

    def try_enter(self) -> bool:
        """Take an in-flight slot; False means answer 503 (backpressure, or closing)."""
        if not self._closing and self._slots.acquire(blocking=False):
            if not self._closing:
                return True
            self._slots.release()
        with self._lock:
            self.counters.busy += 1
        return False

    def leave(self) -> None:
        self._slots.release()

    def precheck(self, method: str, path: str, headers: Mapping[str, str]) -> Answer | None:
        """The refusal a request gets from its head alone (path, method, token, Content-Type), or
        None. Headers are keyed in lower case."""
        path = path.split("?", 1)[0]
        if path in self.routes:
            if not self.authorized(headers.get("authorization")):
                return self._refuse(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
            return None
        signal = SIGNALS.get(path)
        if signal is None:
            return self._refuse(404, f"no OTLP endpoint at {path}; send {PATHS}")
        if method != "POST":
            return self._refuse(405, f"{signal.path} takes POST", {"Allow": "POST"})
        if not self.authorized(headers.get("authorization")):
            return self._refuse(401, "missing or wrong bearer token", {"WWW-Authenticate": "Bearer"})
        if media_type(headers.get("content-type")) is None:
            return self._refuse(
                415, f"Content-Type must be {PROTOBUF} or {JSON}, got {headers.get('content-type')!r}"
            )
        return None

    def handle_http(self, method: str, path: str, headers: Mapping[str, str], body: bytes) -> Answer:
        """Answer one OTLP/HTTP request whose body has been read (the caller took a slot)."""
        return self.precheck(method, path, headers) or self.process(headers, body, path, method)

    def process(
        self, headers: Mapping[str, str], body: bytes, path: str = TRACES_PATH, method: str = "POST"
    ) -> Answer:
        """Decode, store and forward the body of a request `precheck` let through (the caller
        took a slot); or answer it with one of `routes`."""
        route = self.routes.get(path.split("?", 1)[0])
        if route is not None:
            status, answer = route(method, body)
            if status >= 400:
                self.count_refusal(status)
            return Answer(status, json.dumps(answer).encode(), "application/json")
        signal = SIGNALS.get(path.split("?", 1)[0], TRACES)
        kind = media_type(headers.get("content-type")) or PROTOBUF
        encoding = headers.get("content-encoding")
        try:
            raw = decompress(body, encoding, self.max_body)
            request = parse_request(raw, kind, signal)
        except OtlpTooLarge as exc:
            return self._refuse(413, str(exc))
        except OtlpDecodeError as exc:
            return self._refuse(400, str(exc))
        try:
            converted = self.ingest(request, signal)
        except RunsCrowded as exc:
            return self._refuse(
                503, f"receiver busy, retry later: {exc}", {"Retry-After": str(RETRY_AFTER_S)}
            )
        except AgentTraceError as exc:
            log.warning("agenttrace: receiver cannot store %ss: %s", signal.noun, exc)
            return self._refuse(
                503, f"cannot store {signal.noun}s right now: {exc}", {"Retry-After": str(RETRY_AFTER_S)}
            )
        if self.forwarder is not None:
            self.forwarder.submit(
                body,
                kind,
                encoding if encoding and encoding.lower() != "identity" else None,
                signal=signal.name,
            )
        return Answer(200, encode_response(kind, converted.rejected, converted.message, signal), kind)

    def convert(self, request: Any, signal: Signal = TRACES) -> Converted:
        """A decoded request as records of the store (not stored), linked to their runs."""
        if signal is LOGS:
            converted = convert_logs(request, self.sessions)
        elif signal is METRICS:
            converted = convert_metrics(request, self.sessions)
        else:
            converted = convert(request)
        if converted.sessions:
            self.sessions.learn(converted.sessions)
        if self.run_id is not None:
            converted = _as_run(converted, self.run_id)
        return converted

    def ingest(self, request: Any, signal: Signal = TRACES) -> Converted:
        """Store a decoded request of a signal (an Export<Signal>ServiceRequest). Raises
        StoreError if the store cannot take it, RunsCrowded if it would seal many runs to open its
        own while half the slots already do."""
        converted = self.convert(request, signal)
        if converted.batch.num_rows:
            # Opening many runs past the writer's bound means sealing as many others first, which
            # is slow: such requests get half the slots at most, so other clients keep the rest.
            # A request opening a run or a few (an agent run starting) is never held up here.
            crowded = self.writer.evictions_needed(converted.run_ids, signal.kind) > UNGATED_EVICTIONS
            if crowded and not self._openers.acquire(blocking=False):
                raise RunsCrowded(
                    f"{self.writer.max_open_runs} runs are open and other requests are opening more"
                )
            try:
                self.writer.append(converted.batch, sync=False, kind=signal.kind)
            finally:
                if crowded:
                    self._openers.release()
        now = time.monotonic()
        with self._lock:
            counters = self.counters
            counters.requests += 1
            if signal is LOGS:
                counters.log_records += converted.accepted
                counters.rejected_log_records += converted.rejected
            elif signal is METRICS:
                counters.data_points += converted.accepted
                counters.rejected_data_points += converted.rejected
            else:
                counters.spans += converted.accepted
                counters.rejected_spans += converted.rejected
            for run_id in converted.run_ids:
                self._note_run(run_id)
                if run_id in self._to_seal:  # a late span: the run is not quiet yet
                    self._to_seal[run_id] = now
            for run_id in converted.ended_roots:
                self._to_seal[run_id] = now
            while len(self._to_seal) > MAX_PENDING_SEALS:  # the writer seals it in time anyway
                self._to_seal.popitem(last=False)
        return converted

    def _note_run(self, run_id: str) -> None:
        if run_id in self._seen:
            self._seen.move_to_end(run_id)
            return
        self._seen[run_id] = None
        self.counters.runs += 1
        if len(self._seen) > MAX_REMEMBERED_RUNS:
            self._seen.popitem(last=False)

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
            _never_raise("fsync the spool", self.writer.sync)
            _never_raise("seal finished runs", self._seal_quiet_runs)

    def _seal_quiet_runs(self) -> None:
        quiet_since = time.monotonic() - SEAL_AFTER_INTERVALS * self.flush_interval
        with self._lock:
            ready = [r for r, last in self._to_seal.items() if last <= quiet_since]
            for run_id in ready:
                del self._to_seal[run_id]
        for run_id in ready:
            if self._stop.is_set():
                return  # close() seals the rest
            _never_raise(f"seal run {run_id}", lambda r=run_id: self.writer.seal_run(r))

    def close(self) -> None:
        """Stop maintenance, let requests being stored finish (up to CLOSE_WAIT_S), forward what
        is queued, seal everything into Parquet. Safe to call twice."""
        if self._closing:
            return
        self._stop.set()
        self._closing = True
        deadline = time.monotonic() + CLOSE_WAIT_S
        for _ in range(self.max_inflight):  # every slot taken: nothing is being stored any more
            if not self._slots.acquire(timeout=max(0.0, deadline - time.monotonic())):
                log.warning("agenttrace: closing with requests still being stored")
                break
        self._maintainer.join(timeout=CLOSE_WAIT_S)
        if self.forwarder is not None:
            self.forwarder.close()
        self.writer.close()

    def status_line(self) -> str:
        c = self.counters
        elapsed = max(1e-9, time.monotonic() - c.started)
        parts = [f"spans {c.spans:,}"]
        if c.log_records or c.data_points:
            parts.append(f"log records {c.log_records:,}, data points {c.data_points:,}")
        parts += [
            f"runs {c.runs:,}",
            f"{c.spans / elapsed:,.0f} spans/s",
            f"rejected {c.rejected_spans:,} spans, {c.rejected_requests:,} requests",
        ]
        if c.rejected_log_records or c.rejected_data_points:
            parts[-1] += f", {c.rejected_log_records:,} log records, {c.rejected_data_points:,} data points"
        if self.forwarder is not None:
            f = self.forwarder
            parts.append(
                f"forwarded {f.forwarded:,} (failed {f.failed:,}, dropped {f.dropped:,}, "
                f"queued {f.pending:,})"
            )
        return " · ".join(parts)


def _never_raise(what: str, action: Callable[[], object]) -> None:
    """Run one maintenance step; log whatever it raises (the maintenance thread must not die)."""
    try:
        action()
    except (AgentTraceError, OSError) as exc:
        log.warning("agenttrace: receiver could not %s: %s", what, exc)
    except Exception:
        log.exception("agenttrace: receiver could not %s", what)
