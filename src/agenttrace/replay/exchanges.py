"""One LLM exchange (a request to a model API and its answer), stored in the run, and read back.

The proxy hands each finished `Exchange` to its `on_exchange` callback; the supervisor stores it
with `record_span(tracer, parent_span, exchange)`: one span per exchange, under the run's root,
`agenttrace.span.type = llm_exchange` (not a step: the agent's LLM steps come from its own
telemetry), its bodies in the content-addressed artifact store by sha256. `load_recording(store,
run_id)` reads a recorded run's exchanges back for a replay, trusting only what the supervisor
wrote (spans of `origin = 'supervisor'` in a run whose manifest checks out) and bodies whose bytes
still hash to the recorded sha256: nothing the agent could write is served as a recorded answer.

Span attributes (all under `agenttrace.exchange.`): `seq` (1, 2, ... in request order), `route`,
`method`, `path` (route-relative, query kept, secret parameters redacted), `status` (absent when
no answer came), `request_sha256`, `response_sha256`, `request_size`, `response_size`, `chunks`
(JSON `[[bytes, ms since the request], ...]`, the answer's chunk boundaries as they arrived; over
16 KiB of JSON it is an artifact named by `chunks_sha256`), `request_headers` / `response_headers`
(JSON lists of `[name, value]`, secrets removed), `model`, `key` (the normalised request's sha256),
`error`, `mode` (`record`, `replay` or `live`: forwarded after a replay went live),
`replayed_from` (the recorded exchange a replay served). The run's root span carries
`agenttrace.replay.recorded = true` and `agenttrace.replay.workdir` (`root_attributes`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, Tracer

from .. import constants
from ..errors import AgentTraceError, ReplayError
from ..store.artifact_store import ArtifactStore, open_regular
from ..store.layout import StoreLayout

SPAN_TYPE = "llm_exchange"
PREFIX = "agenttrace.exchange."
RECORDED_ATTRIBUTE = "agenttrace.replay.recorded"
WORKDIR_ATTRIBUTE = "agenttrace.replay.workdir"
REPLAY_OF_ATTRIBUTE = "agenttrace.replay_of"
CHUNKS_INLINE_MAX = 16 * 1024
"""Chunk lists longer than this (as JSON) are stored as an artifact, not in the span."""


@dataclass
class Exchange:
    seq: int
    route: str
    method: str
    path: str
    start_ns: int
    key: str
    request_headers: list[list[str]] = field(default_factory=list)
    request_sha256: str | None = None
    request_size: int = 0
    model: str | None = None
    status: int | None = None
    reason: str = ""
    response_headers: list[list[str]] = field(default_factory=list)
    response_sha256: str | None = None
    response_size: int = 0
    chunks: list[list[int]] = field(default_factory=list)
    end_ns: int = 0
    error: str | None = None
    mode: str = "record"
    replayed_from: int | None = None
    request_body: bytes | None = field(default=None, repr=False, compare=False)
    """In memory only (the store holds it by sha256)."""
    response_body: bytes | None = field(default=None, repr=False, compare=False)

    def to_json(self) -> dict[str, Any]:
        """The record without bodies."""
        return {k: v for k, v in self.__dict__.items() if k not in ("request_body", "response_body")}

    def store_bodies(self, artifacts: ArtifactStore) -> None:
        """Put the bodies in the artifact store and set their sha256s. Raises StoreError."""
        self.request_size = len(self.request_body or b"")
        self.response_size = len(self.response_body or b"")
        if self.request_body is not None:
            self.request_sha256 = artifacts.put_bytes(self.request_body)
        if self.response_body is not None:
            self.response_sha256 = artifacts.put_bytes(self.response_body)


def root_attributes(workdir: str | None) -> dict[str, str | bool]:
    """Attributes for the root span of a run whose exchanges are recorded."""
    return {RECORDED_ATTRIBUTE: True, **({WORKDIR_ATTRIBUTE: workdir} if workdir else {})}


def span_attributes(exchange: Exchange, artifacts: ArtifactStore | None = None) -> dict[str, Any]:
    chunks = json.dumps(exchange.chunks, separators=(",", ":"))
    attributes: dict[str, Any] = {
        constants.SPAN_TYPE: SPAN_TYPE,
        PREFIX + "seq": exchange.seq,
        PREFIX + "route": exchange.route,
        PREFIX + "method": exchange.method,
        PREFIX + "path": exchange.path,
        PREFIX + "key": exchange.key,
        PREFIX + "mode": exchange.mode,
        PREFIX + "request_size": exchange.request_size,
        PREFIX + "response_size": exchange.response_size,
        PREFIX + "request_headers": json.dumps(exchange.request_headers),
        PREFIX + "response_headers": json.dumps(exchange.response_headers),
    }
    if len(chunks) > CHUNKS_INLINE_MAX and artifacts is not None:
        attributes[PREFIX + "chunks_sha256"] = artifacts.put_bytes(chunks.encode())
    else:
        attributes[PREFIX + "chunks"] = chunks
    optional = {
        "status": exchange.status,
        "reason": exchange.reason or None,
        "request_sha256": exchange.request_sha256,
        "response_sha256": exchange.response_sha256,
        "model": exchange.model,
        "error": exchange.error,
        "replayed_from": exchange.replayed_from,
    }
    attributes.update({PREFIX + k: v for k, v in optional.items() if v is not None})
    return attributes


def record_span(
    tracer: Tracer, parent_span: Span, exchange: Exchange, artifacts: ArtifactStore | None = None
) -> None:
    """Write one span for the exchange under `parent_span` (the run's root: its run id is the
    span's). Call it before the root span ends (stop the proxy first). `artifacts`: where a
    long chunk list goes (else it stays in the span, where the attribute limit may cut it)."""
    attributes = span_attributes(exchange, artifacts)
    run_id = (getattr(parent_span, "attributes", None) or {}).get(constants.RUN_ID)
    if run_id is not None:
        attributes[constants.RUN_ID] = run_id
    span = tracer.start_span(
        f"{exchange.method} {exchange.route}{exchange.path.split('?', 1)[0]}",
        context=trace.set_span_in_context(parent_span),
        kind=SpanKind.CLIENT,
        start_time=exchange.start_ns,
        attributes=attributes,
    )
    if exchange.error is not None or exchange.status is None:
        span.set_status(Status(StatusCode.ERROR, exchange.error or "no answer"))
    span.end(end_time=max(exchange.end_ns, exchange.start_ns))


@dataclass
class Recording:
    """A recorded run's exchanges, in order, with their bodies."""

    run_id: str
    exchanges: list[Exchange]
    workdir: str | None = None


def _ns(when: datetime | None) -> int:
    """A stored time (microseconds, UTC) in nanoseconds since the epoch, exactly."""
    if when is None:
        return 0
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return (when - _EPOCH) // timedelta(microseconds=1) * 1000


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _read_artifact(artifacts: ArtifactStore, sha256: str, what: str) -> bytes:
    path = artifacts.path_of(sha256)
    try:
        with open_regular(path) as f:
            data = f.read()
    except OSError as exc:
        raise ReplayError(f"{what}: artifact {sha256} cannot be read ({exc.strerror or exc})") from exc
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ReplayError(f"{what}: artifact {path} was changed since it was recorded (sha256 mismatch)")
    return data


def _exchange_from(row: dict[str, Any], artifacts: ArtifactStore) -> Exchange:
    a = row["attributes"]

    def get(name: str) -> str | None:
        return a.get(PREFIX + name)

    def number(name: str) -> int | None:
        value = get(name)
        return int(value) if value not in (None, "") else None

    seq = number("seq") or 0
    what = f"exchange {seq} ({get('method')} {get('route')}{get('path')})"
    if get("chunks_sha256"):
        chunks = json.loads(_read_artifact(artifacts, get("chunks_sha256") or "", what + ", chunks"))
    else:
        chunks = json.loads(get("chunks") or "[]")
    exchange = Exchange(
        seq=seq,
        route=get("route") or "",
        method=get("method") or "",
        path=get("path") or "",
        start_ns=_ns(row["start_time"]),
        key=get("key") or "",
        request_headers=json.loads(get("request_headers") or "[]"),
        request_sha256=get("request_sha256"),
        request_size=number("request_size") or 0,
        model=get("model"),
        status=number("status"),
        reason=get("reason") or "",
        response_headers=json.loads(get("response_headers") or "[]"),
        response_sha256=get("response_sha256"),
        response_size=number("response_size") or 0,
        chunks=chunks,
        end_ns=_ns(row["end_time"]),
        error=get("error"),
        mode=get("mode") or "record",
        replayed_from=number("replayed_from"),
    )
    for side, sha, size in (
        ("request", exchange.request_sha256, exchange.request_size),
        ("response", exchange.response_sha256, exchange.response_size),
    ):
        if size and not sha:
            raise ReplayError(f"{what}: its {side} body ({size} bytes) was not stored: {exchange.error}")
    if exchange.request_sha256:
        exchange.request_body = _read_artifact(artifacts, exchange.request_sha256, what + ", request")
    if exchange.response_sha256:
        exchange.response_body = _read_artifact(artifacts, exchange.response_sha256, what + ", response")
    return exchange


def load_recording(store: Path | StoreLayout, run_id: str) -> Recording:
    """The run's recorded exchanges, in order, with their bodies read back and checked. Raises
    ReplayError for a run not recorded by `agenttrace run --record`, one whose records fail the
    integrity check, or a body missing or changed in the artifact store; RunNotFoundError."""
    from ..analysis import Database
    from ..errors import RunNotFoundError

    layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
    try:
        with Database(layout, [run_id], verify=True) as db:
            if not db.is_supervised(run_id):
                raise ReplayError(
                    f"run {run_id} was not recorded by `agenttrace run --record` (it has no manifest)"
                )
            problems = [reason for run, reason, _ in db.problems if run == run_id]
            if problems:
                raise ReplayError(f"run {run_id} fails its integrity check: {problems[0]}")
            root = db.report("replay_recorded", run_id=run_id)
            if not root:
                raise RunNotFoundError(f"no run {run_id} in {layout.root}")
            if str(root[0]["recorded"]).lower() != "true":
                raise ReplayError(f"run {run_id} was not recorded with `--record`: it has no model answers")
            rows = db.report("replay_exchanges", run_id=run_id)
    except (ReplayError, RunNotFoundError):
        raise
    except AgentTraceError as exc:
        raise ReplayError(f"run {run_id} cannot be read: {exc}") from exc
    artifacts = ArtifactStore(layout, max_bytes=1 << 62)
    exchanges = [_exchange_from(row, artifacts) for row in rows]
    return Recording(run_id, exchanges, root[0]["workdir"])


__all__ = [
    "REPLAY_OF_ATTRIBUTE",
    "Exchange",
    "Recording",
    "load_recording",
    "record_span",
    "root_attributes",
    "span_attributes",
]
