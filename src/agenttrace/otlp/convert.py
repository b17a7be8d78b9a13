"""OTLP `ExportTraceServiceRequest` to Arrow record batches in the store's span schema.

A span is kept or rejected on its own: one with a malformed id, or a time the store cannot hold
(nanoseconds at or past 2^63, the year 2262), is counted and described for the response's
`partial_success`, and the rest of the request is stored. A span whose end time is 0
has not ended: it becomes a `start` record, like the pending-span processor's.

A span's run is its `agenttrace.run.id` (attribute, else resource attribute), else its trace id.
Spans that carry an agent's session id (`SESSION_KEYS`) tell the receiver which run that session
is in, for the log records and metrics of the session that name no run (see logs_metrics.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from itertools import accumulate
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue

from ..constants import RUN_ID
from ..ids import is_safe_run_id
from ..store.schema import ATTRIBUTES, END, EVENT, LINK, SPAN_SCHEMA, START

SPAN_KINDS = ("Unspecified", "Internal", "Server", "Client", "Producer", "Consumer")
STATUS_CODES = ("Unset", "Ok", "Error")
_TS = SPAN_SCHEMA.field("Timestamp").type
MAX_TIME_NS = 2**63 - 1
"""The latest time a store timestamp (int64 nanoseconds) holds; OTLP's fixed64 goes further."""
SESSION_KEYS = ("session.id", "conversation.id", "gen_ai.conversation.id")
"""Attributes (of a record, else of its resource) naming an agent's session: Claude Code's
`session.id`, Codex's `conversation.id`, Gemini CLI's resource `session.id`, the GenAI
conventions' `gen_ai.conversation.id`. A record's own wins over its resource's."""
_SESSION_KEYS = frozenset(SESSION_KEYS)


@dataclass
class Converted:
    """The stored form of one request: records, and what was rejected and why."""

    batch: pa.RecordBatch
    accepted: int
    rejected: int = 0
    problems: list[str] = field(default_factory=list)
    run_ids: set[str] = field(default_factory=set)
    ended_roots: set[str] = field(default_factory=set)
    """Runs whose root span (no parent) ended in this request."""
    sessions: dict[str, str] = field(default_factory=dict)
    """Agent session id -> the run its records named (by run id or trace id) in this request."""
    noun: str = "span"

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        shown = "; ".join(self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return f"{self.rejected} {self.noun}(s) rejected: {shown}{more}"


def any_value(value: AnyValue) -> Any:
    """An AnyValue as a Python value (arrays and maps nested)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind == "array_value":
        return [any_value(v) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return None


def as_string(value: AnyValue) -> str:
    """An AnyValue as the ClickHouse exporter's AsString() writes it (as the SDK path does)."""
    kind = value.WhichOneof("value")
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return "true" if value.bool_value else "false"
    if kind == "int_value":
        return str(value.int_value)
    if kind == "double_value":
        return str(value.double_value)
    if kind == "bytes_value":
        return value.bytes_value.hex()
    if kind is None:
        return ""
    return json.dumps(any_value(value), ensure_ascii=False, default=str)


def _attrs(pairs: Any) -> dict[str, str]:
    return {kv.key: as_string(kv.value) for kv in pairs}


def _map_array(dicts: list[dict[str, str]]) -> pa.Array:
    offsets = [0, *accumulate(map(len, dicts))]
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.array([k for d in dicts for k in d], pa.string()),
        pa.array([v for d in dicts for v in d.values()], pa.string()),
        type=ATTRIBUTES,
    )


def _flat_map_array(offsets: list[int], keys: list[str], values: list[str]) -> pa.Array:
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.array(keys, pa.string()),
        pa.array(values, pa.string()),
        type=ATTRIBUTES,
    )


def _id_problem(name: str, raw: bytes, size: int, optional: bool = False) -> str | None:
    if optional and not raw:
        return None
    if len(raw) != size:
        return f"{name} must be {size} bytes, got {len(raw)}"
    if not any(raw):
        return f"{name} must not be all zeros"
    return None


def _time_problem(span: Any) -> str | None:
    for name, value in (
        ("start_time_unix_nano", span.start_time_unix_nano),
        ("end_time_unix_nano", span.end_time_unix_nano),
    ):
        if value > MAX_TIME_NS:
            return f"{name} {value} is past the latest time the store holds ({MAX_TIME_NS})"
    if _late_event(span):
        return f"an event's time_unix_nano is past the latest time the store holds ({MAX_TIME_NS})"
    return None


def _late_event(span: Any) -> bool:
    return any(event.time_unix_nano > MAX_TIME_NS for event in span.events)


def _span_problem(span: Any) -> str | None:
    problem = (
        _id_problem("trace_id", span.trace_id, 16)
        or _id_problem("span_id", span.span_id, 8)
        or _id_problem("parent_span_id", span.parent_span_id, 8, optional=True)
        or _time_problem(span)
    )
    if problem is None:
        for link in span.links:
            problem = _id_problem("link trace_id", link.trace_id, 16) or _id_problem(
                "link span_id", link.span_id, 8
            )
            if problem is not None:
                break
    return problem


_ZERO_TRACE = bytes(16)
_ZERO_SPAN = bytes(8)


def convert(request: ExportTraceServiceRequest) -> Converted:
    """Every valid span of the request as one record batch.

    This is the receiver's hot path, so attributes go straight into flat key / value lists (the
    Arrow map layout) instead of a dict per span, and a resource's attributes are read once.
    """
    cols: dict[str, list[Any]] = {name: [] for name in SPAN_SCHEMA.names}
    res_offsets, res_keys, res_values = [0], [], []
    attr_offsets, attr_keys, attr_values = [0], [], []
    event_offsets = [0]
    events: list[tuple[int, str, dict[str, str]]] = []
    link_offsets = [0]
    links: list[tuple[str, str, str, dict[str, str]]] = []
    rejected = 0
    problems: list[str] = []
    run_ids: set[str] = set()
    ended_roots: set[str] = set()
    sessions: dict[str, str] = {}
    (timestamps, trace_ids, span_ids, parent_ids, trace_states, names, kinds, services) = (
        cols[c] for c in SPAN_SCHEMA.names[:8]
    )
    scope_names, scope_versions, durations = cols["ScopeName"], cols["ScopeVersion"], cols["Duration"]
    status_codes, status_messages = cols["StatusCode"], cols["StatusMessage"]
    run_col, record_types = cols["RunId"], cols["RecordType"]
    for resource_spans in request.resource_spans:
        resource = _attrs(resource_spans.resource.attributes)
        r_keys, r_values, r_len = list(resource), list(resource.values()), len(resource)
        service = resource.get("service.name", "")
        resource_run = resource.get(RUN_ID)
        if resource_run is not None and not is_safe_run_id(resource_run):
            resource_run = None
        resource_session = next((resource[k] for k in SESSION_KEYS if resource.get(k)), None)
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for span in scope_spans.spans:
                trace_id, span_id, parent_id = span.trace_id, span.span_id, span.parent_span_id
                end = span.end_time_unix_nano
                start = span.start_time_unix_nano
                if (
                    len(trace_id) != 16
                    or len(span_id) != 8
                    or trace_id == _ZERO_TRACE
                    or span_id == _ZERO_SPAN
                    or (parent_id and (len(parent_id) != 8 or parent_id == _ZERO_SPAN))
                    or span.links
                    or start > MAX_TIME_NS
                    or end > MAX_TIME_NS
                    or (span.events and _late_event(span))
                ) and (problem := _span_problem(span)) is not None:
                    rejected += 1
                    if len(problems) < 10:
                        problems.append(f"span {span.name[:80]!r}: {problem}")
                    continue
                trace_hex = trace_id.hex()
                run_id = resource_run or trace_hex
                first = len(attr_keys)
                session = resource_session
                for kv in span.attributes:
                    key, value = kv.key, kv.value
                    is_text = value.WhichOneof("value") == "string_value"
                    text = value.string_value if is_text else as_string(value)
                    attr_keys.append(key)
                    attr_values.append(text)
                    if key == RUN_ID and is_safe_run_id(text):
                        run_id = text
                    elif key in _SESSION_KEYS and text:
                        session = text
                if session is not None:
                    sessions[session] = run_id
                count = len(attr_keys) - first
                if count > 1 and len(set(attr_keys[first:])) != count:  # a repeated key: last one wins
                    kept = dict(zip(attr_keys[first:], attr_values[first:], strict=True))
                    attr_keys[first:], attr_values[first:] = list(kept), list(kept.values())
                attr_offsets.append(len(attr_keys))
                res_keys += r_keys
                res_values += r_values
                res_offsets.append(res_offsets[-1] + r_len)
                run_ids.add(run_id)
                timestamps.append(start)
                trace_ids.append(trace_hex)
                span_ids.append(span_id.hex())
                parent_ids.append(parent_id.hex())
                trace_states.append(span.trace_state)
                names.append(span.name)
                kind = span.kind
                kinds.append(SPAN_KINDS[kind] if 0 <= kind < 6 else "Unspecified")
                services.append(service)
                scope_names.append(scope_name)
                scope_versions.append(scope_version)
                durations.append(max(0, end - start) if end else None)
                status = span.status
                code = status.code
                status_codes.append(STATUS_CODES[code] if 0 <= code < 3 else "Unset")
                status_messages.append(status.message)
                if span.events:
                    for event in span.events:
                        events.append((event.time_unix_nano, event.name, _attrs(event.attributes)))
                event_offsets.append(len(events))
                if span.links:
                    for link in span.links:
                        links.append(
                            (
                                link.trace_id.hex(),
                                link.span_id.hex(),
                                link.trace_state,
                                _attrs(link.attributes),
                            )
                        )
                link_offsets.append(len(links))
                run_col.append(run_id)
                record_types.append(END if end else START)
                if end and not parent_id:
                    ended_roots.add(run_id)
    string = pa.string()
    arrays = [
        pa.array(timestamps, _TS),
        *(pa.array(cols[c], string) for c in SPAN_SCHEMA.names[1:8]),
        _flat_map_array(res_offsets, res_keys, res_values),
        pa.array(scope_names, string),
        pa.array(scope_versions, string),
        _flat_map_array(attr_offsets, attr_keys, attr_values),
        pa.array(durations, pa.int64()),
        pa.array(status_codes, string),
        pa.array(status_messages, string),
        pa.ListArray.from_arrays(
            pa.array(event_offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [
                    pa.array([e[0] for e in events], _TS),
                    pa.array([e[1] for e in events], string),
                    _map_array([e[2] for e in events]),
                ],
                fields=list(EVENT),
            ),
            type=pa.list_(EVENT),
        ),
        pa.ListArray.from_arrays(
            pa.array(link_offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [
                    pa.array([x[0] for x in links], string),
                    pa.array([x[1] for x in links], string),
                    pa.array([x[2] for x in links], string),
                    _map_array([x[3] for x in links]),
                ],
                fields=list(LINK),
            ),
            type=pa.list_(LINK),
        ),
        pa.array(run_col, string),
        pa.array(record_types, string),
    ]
    batch = pa.RecordBatch.from_arrays(arrays, schema=SPAN_SCHEMA)
    return Converted(batch, batch.num_rows, rejected, problems, run_ids, ended_roots, sessions)


def warm_up() -> None:
    """Convert one tiny request, so that the first client does not pay for Arrow's lazy imports."""
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x01" * 8, "warm-up"
    span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    convert(request)


__all__ = ["SESSION_KEYS", "Converted", "any_value", "as_string", "convert", "warm_up"]
