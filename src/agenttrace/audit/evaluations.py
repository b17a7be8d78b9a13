"""The audit's verdict as OpenTelemetry GenAI evaluation results, for the OTLP backend a run is
forwarded to (OTEL_EXPORTER_OTLP_ENDPOINT in agenttrace's environment, as for its spans).

One `gen_ai.evaluation.result` per gate (`gen_ai.evaluation.name` = the gate, `score.label` =
`pass` | `fail` | `n/a`, `score.value` = 1 | 0 (none for `n/a`), `explanation` = its violations'
reasons) and one for the whole run (`agenttrace.verdict`, label = the run's state), carried twice:

- as OTLP log records (event name `gen_ai.evaluation.result`, also as the `event.name` attribute),
  with the run's root span's trace and span ids: what a logs-capable backend files under the trace;
- as span events of one short span, `agenttrace verdict`, a child of the run's root span: what a
  traces-only backend such as Phoenix shows in the trace (an EVALUATOR span, its output the verdict,
  its status an error when the run failed). It repeats the audit record's attributes
  (`agenttrace.span.type` = `audit`, `agenttrace.audit.state|reasons|gates`).

Every record carries `agenttrace.origin` = `supervisor`: a reader of the backend keeps the
evaluations with it and drops the rest. The audited agent runs as the same user and sends OTLP of
its own through the run's receiver, so that key is reserved: the receiver of `agenttrace run` does
not forward an agent's payload that names it (`names_reserved_key`, its forwarder's screen); it is
still stored, as the agent's. agenttrace's own verdict reads no evaluation records at all. The
marker is evidence, not proof: the agent can read agenttrace's environment (the backend's URL
and headers) and post there directly; the run's store is what settles a verdict.

Everything it needs is imported with it: `agenttrace run` imports it before the agent starts
(a module imported later could have been rewritten by the agent, which runs as the same user).

Sending is bounded (`SEND_TIMEOUT_S` in all, one attempt per signal, in a thread) and never
changes the run's result: what failed is one line for the caller to print (a backend that takes
traces and answers 404, 405 or 501 for logs, as Phoenix does, is not a failure). Nothing is written to
the store: the run's verdict is already there, as its `agenttrace audit` span.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from google.protobuf.message import Message
from opentelemetry._logs import SeverityNumber
from opentelemetry.exporter.otlp.proto.common._log_encoder import encode_logs
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import InMemoryLogRecordExporter, SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import (
    NonRecordingSpan,
    SpanContext,
    Status,
    StatusCode,
    TraceFlags,
    set_span_in_context,
)

from .. import __version__, constants
from ..otlp.decode import SIGNALS, OtlpDecodeError, decompress, parse_request
from ..otlp.forward import Target
from .record import AUDIT_GATES, AUDIT_REASONS, AUDIT_STATE
from .verdict import GateResult, Verdict

EVENT_NAME = "gen_ai.evaluation.result"
NAME = "gen_ai.evaluation.name"
LABEL = "gen_ai.evaluation.score.label"
VALUE = "gen_ai.evaluation.score.value"
EXPLANATION = "gen_ai.evaluation.explanation"
SEVERITY = "agenttrace.gate.severity"
VERDICT = "agenttrace.verdict"
"""The evaluation of the whole run (its label: the run's state)."""
ORIGIN = "agenttrace.origin"
SUPERVISOR = "supervisor"
SPAN_NAME = "agenttrace verdict"
SCOPE = "agenttrace.evaluations"
SEND_TIMEOUT_S = 3.0
MAX_EXPLANATION = 4096
"""Characters of reasons per evaluation; the store keeps them all."""
PROTOBUF = "application/x-protobuf"
NO_LOGS = ("HTTP 404 ", "HTTP 405 ", "HTTP 501 ")
"""A backend that takes no logs answers so: not a failure once the span with the events is in."""


@dataclass(frozen=True)
class Evaluation:
    name: str
    label: str
    value: float | None
    explanation: str | None
    severity: str | None = None

    def attributes(self, run_id: str) -> dict[str, str | float]:
        attributes: dict[str, str | float] = {NAME: self.name, LABEL: self.label}
        if self.value is not None:
            attributes[VALUE] = self.value
        if self.explanation:
            attributes[EXPLANATION] = self.explanation
        if self.severity:
            attributes[SEVERITY] = self.severity
        return attributes | {ORIGIN: SUPERVISOR, constants.RUN_ID: run_id}


def evaluations(verdict: Verdict) -> list[Evaluation]:
    """One evaluation per gate, in the verdict's order, then the run's."""
    gates = [_of_gate(g) for g in verdict.gates]
    run = Evaluation(VERDICT, verdict.state, 1.0 if verdict.succeeded else 0.0, _joined(verdict.reasons))
    return [*gates, run]


def _of_gate(result: GateResult) -> Evaluation:
    value = {"pass": 1.0, "fail": 0.0}.get(result.status)
    reasons = [str(v.get("reason")) for v in result.violations if v.get("reason") is not None]
    return Evaluation(result.gate.name, result.status, value, _joined(reasons), result.gate.severity)


def _joined(reasons: list[str]) -> str | None:
    text = "; ".join(reasons)
    if len(text) > MAX_EXPLANATION:
        text = text[: MAX_EXPLANATION - len(constants.TRUNCATED_SUFFIX)] + constants.TRUNCATED_SUFFIX
    return text or None


# -- the two payloads ------------------------------------------------------------------------------
def trace_request(
    verdict: Verdict, root: SpanContext, resource: Resource, started_ns: int, ended_ns: int
) -> Message:
    """The `agenttrace verdict` span under `root`, one `gen_ai.evaluation.result` event per
    evaluation, as an ExportTraceServiceRequest (made by the OTel SDK, encoded as its exporter does)."""
    kept = InMemorySpanExporter()
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(SimpleSpanProcessor(kept))
    parent = NonRecordingSpan(SpanContext(root.trace_id, root.span_id, True, TraceFlags(TraceFlags.SAMPLED)))
    found = evaluations(verdict)
    summary = verdict.state + (": " + "; ".join(verdict.reasons) if verdict.reasons else "")
    span = provider.get_tracer(SCOPE, __version__).start_span(
        SPAN_NAME,
        context=set_span_in_context(parent),
        start_time=started_ns,
        attributes={
            ORIGIN: SUPERVISOR,
            constants.RUN_ID: verdict.run_id,
            constants.SPAN_TYPE: "audit",
            AUDIT_STATE: verdict.state,
            AUDIT_REASONS: json.dumps(verdict.reasons),
            AUDIT_GATES: json.dumps({g.gate.name: g.status for g in verdict.gates}),
            "openinference.span.kind": "EVALUATOR",
            "output.value": summary[:MAX_EXPLANATION],
            "output.mime_type": "text/plain",
        },
    )
    for evaluation in found:
        span.add_event(EVENT_NAME, evaluation.attributes(verdict.run_id), timestamp=ended_ns)
    if not verdict.succeeded:
        span.set_status(Status(StatusCode.ERROR, f"run {verdict.state}"))
    span.end(end_time=ended_ns)
    provider.shutdown()
    return encode_spans(kept.get_finished_spans())


def logs_request(verdict: Verdict, root: SpanContext, resource: Resource, at_ns: int) -> Message:
    """One log record per evaluation, event `gen_ai.evaluation.result`, with the root span's ids,
    as an ExportLogsServiceRequest (made by the OTel SDK, encoded as its exporter does)."""
    kept = InMemoryLogRecordExporter()
    provider = LoggerProvider(resource=resource)
    provider.add_log_record_processor(SimpleLogRecordProcessor(kept))
    logger = provider.get_logger(SCOPE, __version__)
    for evaluation in evaluations(verdict):
        failed = evaluation.label not in ("pass", "n/a", "succeeded")
        logger.emit(
            timestamp=at_ns,
            observed_timestamp=at_ns,
            context=_root_context(root),
            severity_number=SeverityNumber.WARN if failed else SeverityNumber.INFO,
            severity_text="WARN" if failed else "INFO",
            event_name=EVENT_NAME,
            attributes={"event.name": EVENT_NAME, **evaluation.attributes(verdict.run_id)},
        )
    provider.shutdown()
    return encode_logs(kept.get_finished_logs())


def _root_context(root: SpanContext) -> Any:
    span = NonRecordingSpan(SpanContext(root.trace_id, root.span_id, True, TraceFlags(TraceFlags.SAMPLED)))
    return set_span_in_context(span)


# -- sending ---------------------------------------------------------------------------------------
@dataclass
class Sending:
    """The evaluations on their way to the backend, from a thread of their own."""

    deadline: float
    errors: list[str] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)
    thread: threading.Thread | None = None

    def wait(self) -> str | None:
        """Wait for the sending, at most until its deadline; what went wrong as one line, or None."""
        if self.thread is not None:
            self.thread.join(max(0.0, self.deadline - time.monotonic()))
            if self.thread.is_alive():
                self.errors.append(f"still sending after {SEND_TIMEOUT_S:g} s: given up")
        if not self.errors:
            return None
        return "the verdict was not sent to the OTLP backend: " + "; ".join(self.errors)


def send(
    target: Target,
    verdict: Verdict,
    root: SpanContext,
    resource: Resource,
    started_ns: int,
    *,
    timeout: float = SEND_TIMEOUT_S,
) -> Sending:
    """Start sending the verdict's evaluations to `target` (traces, and logs where it has a logs
    URL); `Sending.wait()` for the outcome. Nothing here raises."""
    sending = Sending(time.monotonic() + timeout)

    def payloads() -> Iterator[tuple[str, bytes]]:
        now = time.time_ns()
        yield "traces", trace_request(verdict, root, resource, started_ns, now).SerializeToString()
        if target.url_for("logs") is not None:
            yield "logs", logs_request(verdict, root, resource, now).SerializeToString()

    def work() -> None:
        try:
            for signal, body in payloads():
                where = target.url_for(signal)
                assert where is not None
                error = post(where[0], where[1], body, sending.deadline - time.monotonic())
                if error is None:
                    sending.sent.append(signal)
                elif not (signal == "logs" and "traces" in sending.sent and error.startswith(NO_LOGS)):
                    sending.errors.append(error)  # else: a traces-only backend (Phoenix) has them
        except Exception as exc:  # never into the run's result
            sending.errors.append(f"{type(exc).__name__}: {exc}")

    sending.thread = threading.Thread(target=work, name="agenttrace-evaluations", daemon=True)
    sending.thread.start()
    return sending


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
_PROXIED = urllib.request.build_opener()


def post(url: str, headers: dict[str, str], body: bytes, timeout: float) -> str | None:
    """POST one OTLP/HTTP protobuf payload, once, within `timeout` seconds; the error, or None.
    A loopback backend is never reached through an HTTP proxy from the environment."""
    if timeout <= 0:
        return f"no time left to send to {url}"
    loopback = (urlsplit(url).hostname or "") in ("localhost", "127.0.0.1", "::1")
    request = urllib.request.Request(
        url, data=body, headers={**headers, "Content-Type": PROTOBUF}, method="POST"
    )
    try:
        with (_DIRECT if loopback else _PROXIED).open(request, timeout=timeout) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        return f"HTTP {exc.code} from {url}"
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        return f"cannot reach {url}: {getattr(exc, 'reason', exc)}"
    return None


# -- the agent's payloads --------------------------------------------------------------------------
RESERVED = ORIGIN.encode()
KEY_VALUE = "opentelemetry.proto.common.v1.KeyValue"


def names_reserved_key(body: bytes, content_type: str, encoding: str | None, signal: str) -> bool:
    """Whether an OTLP payload has an attribute named `agenttrace.origin` anywhere (resource, scope,
    span, event, link, log record, data point): from an agent, a record posing as agenttrace's own.
    Protobuf keeps a key's bytes as they are, so a protobuf payload without them is let through
    unread; JSON can escape any character of a key (`agenttrace\\u002eorigin`), so JSON is always
    decoded. A payload that cannot be read here is held back: the check fails closed."""
    json_body = "json" in content_type.lower()
    if not json_body and not encoding and RESERVED not in body:
        return False
    try:
        raw = decompress(body, encoding, 1 << 30)
        if not json_body and RESERVED not in raw:
            return False
        kind = next(s for s in SIGNALS.values() if s.name == signal)
        return _names_key(parse_request(raw, content_type, kind), ORIGIN)
    except (OtlpDecodeError, StopIteration):
        return True


def _names_key(message: Message, key: str) -> bool:
    if message.DESCRIPTOR.full_name == KEY_VALUE:
        return getattr(message, "key", None) == key
    for descriptor, value in message.ListFields():
        if descriptor.message_type is None:
            continue
        items = value if descriptor.is_repeated else [value]
        if any(_names_key(item, key) for item in items):
            return True
    return False
