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


def attributes_text(pairs: Any) -> dict[str, str]:
    """KeyValues as text (`as_string`; a repeated key: the last one wins). Strings, nearly every
    value there is, are taken without a call to `as_string`."""
    attrs = {}
    for kv in pairs:
        value = kv.value
        text = value.string_value
        if not text and value.WhichOneof("value") != "string_value":
            text = as_string(value)
        attrs[kv.key] = text
    return attrs


_attrs = attributes_text


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


def _suspect(spans: list[Any], trace_ids: list[bytes], span_ids: list[bytes], parent_ids: list[bytes],
             starts: list[int], ends: list[int]) -> bool:  # fmt: skip
    """Whether any span of a scope may be one to reject (checked in bulk, at C speed): then each
    span is looked at on its own (`_span_problem`)."""
    return (
        set(map(len, trace_ids)) != {16}
        or set(map(len, span_ids)) != {8}
        or not set(map(len, parent_ids)) <= {0, 8}
        or _ZERO_TRACE in trace_ids
        or _ZERO_SPAN in span_ids
        or _ZERO_SPAN in parent_ids
        or max(starts) > MAX_TIME_NS
        or max(ends) > MAX_TIME_NS
        or any(s.links for s in spans)
        or any(_late_event(s) for s in spans if s.events)
    )


class _Columns:
    """The columns of one request's spans, filled a scope at a time (lists for Arrow to take in)."""

    def __init__(self) -> None:
        self.timestamps: list[int] = []
        self.ends: list[int] = []
        self.trace_ids: list[str] = []
        self.span_ids: list[str] = []
        self.parent_ids: list[str] = []
        self.trace_states: list[str] = []
        self.names: list[str] = []
        self.kinds: list[int] = []
        self.services: list[str] = []
        self.scope_names: list[str] = []
        self.scope_versions: list[str] = []
        self.status_codes: list[int] = []
        self.status_messages: list[str] = []
        self.run_ids: list[str] = []
        self.res_offsets, self.res_keys, self.res_values = [0], [], []  # type: ignore[var-annotated]
        self.attr_offsets, self.attr_keys, self.attr_values = [0], [], []  # type: ignore[var-annotated]
        self.event_offsets = [0]
        self.events: list[tuple[int, str, dict[str, str]]] = []
        self.link_offsets = [0]
        self.links: list[tuple[str, str, str, dict[str, str]]] = []
        self.raw_attributes: dict[int, tuple[list[str], list[str]]] = {}
        """Span index -> its attributes as sent, for the spans that repeat a key."""

    def add_attributes(self, spans: list[Any]) -> None:
        """Every span's attributes, flat (the Arrow map layout); a repeated key: the last one wins."""
        keys, values, offsets = self.attr_keys, self.attr_values, self.attr_offsets
        add_key, add_value, add_offset = keys.append, values.append, offsets.append
        for span in spans:
            first = len(keys)
            for kv in span.attributes:
                value = kv.value
                add_key(kv.key)
                text = value.string_value
                if not text and value.WhichOneof("value") != "string_value":
                    text = as_string(value)
                add_value(text)
            count = len(keys) - first
            if count > 1 and len(set(keys[first:])) != count:
                raw = self.raw_attributes[len(offsets) - 1] = (keys[first:], values[first:])
                kept = dict(zip(*raw, strict=True))
                keys[first:], values[first:] = list(kept), list(kept.values())
            add_offset(len(keys))

    def add_events_links(self, spans: list[Any]) -> None:
        events, links = self.events, self.links
        for span in spans:
            for event in span.events:
                events.append((event.time_unix_nano, event.name, _attrs(event.attributes)))
            self.event_offsets.append(len(events))
            for link in span.links:
                links.append(
                    (link.trace_id.hex(), link.span_id.hex(), link.trace_state, _attrs(link.attributes))
                )
            self.link_offsets.append(len(links))

    def span_runs(self, first: int, resource_run: str | None, resource_session: str | None,
                  sessions: dict[str, str]) -> None:  # fmt: skip
        """Each span's run (from `first` on): its own `agenttrace.run.id`, else its resource's,
        else its trace id; and the sessions its spans name (their own, else their resource's)."""
        n = len(self.trace_ids) - first
        runs = [resource_run] * n if resource_run is not None else self.trace_ids[first:]
        session_of: list[str | None] = [resource_session] * n
        keys, values, offsets = self.attr_keys, self.attr_values, self.attr_offsets
        base = offsets[first]
        scope_keys = keys[base:]
        if RUN_ID in scope_keys or not _SESSION_KEYS.isdisjoint(scope_keys):
            for i in range(n):
                a, b = offsets[first + i], offsets[first + i + 1]
                span_keys, span_values = self.raw_attributes.get(first + i) or (keys[a:b], values[a:b])
                for key, value in zip(span_keys, span_values, strict=True):  # as sent: the last wins
                    if key == RUN_ID:
                        if is_safe_run_id(value):
                            runs[i] = value
                    elif key in _SESSION_KEYS and value:
                        session_of[i] = value
        self.run_ids += runs
        if resource_session is not None or any(session_of):
            for session, run_id in zip(session_of, runs, strict=True):
                if session is not None:
                    sessions[session] = run_id


def convert(request: ExportTraceServiceRequest) -> Converted:
    """Every valid span of the request as one record batch.

    This is the receiver's hot path, so it works a scope's spans at a time, a column at a time:
    each field is read in one comprehension, the checks of a whole scope run at C speed (the
    span-by-span checks only where they fail), attributes go straight into flat key / value lists
    (the Arrow map layout) instead of a dict per span, a resource's attributes are read once, and
    the columns computed from others (kind and status names, durations, record types) are Arrow's.
    """
    c = _Columns()
    rejected = 0
    problems: list[str] = []
    sessions: dict[str, str] = {}
    for resource_spans in request.resource_spans:
        resource = _attrs(resource_spans.resource.attributes)
        r_keys, r_values, r_len = list(resource), list(resource.values()), len(resource)
        service = resource.get("service.name", "")
        resource_run = resource.get(RUN_ID)
        if resource_run is not None and not is_safe_run_id(resource_run):
            resource_run = None
        resource_session = next((resource[k] for k in SESSION_KEYS if resource.get(k)), None)
        for scope_spans in resource_spans.scope_spans:
            spans = list(scope_spans.spans)
            if not spans:
                continue
            trace_ids = [s.trace_id for s in spans]
            span_ids = [s.span_id for s in spans]
            parent_ids = [s.parent_span_id for s in spans]
            starts = [s.start_time_unix_nano for s in spans]
            ends = [s.end_time_unix_nano for s in spans]
            if _suspect(spans, trace_ids, span_ids, parent_ids, starts, ends):
                kept = []
                for span in spans:
                    problem = _span_problem(span)
                    if problem is None:
                        kept.append(span)
                        continue
                    rejected += 1
                    if len(problems) < 10:
                        problems.append(f"span {span.name[:80]!r}: {problem}")
                if not kept:
                    continue
                if len(kept) < len(spans):
                    spans = kept
                    trace_ids = [s.trace_id for s in spans]
                    span_ids = [s.span_id for s in spans]
                    parent_ids = [s.parent_span_id for s in spans]
                    starts = [s.start_time_unix_nano for s in spans]
                    ends = [s.end_time_unix_nano for s in spans]
            n = len(spans)
            first = len(c.trace_ids)
            c.timestamps += starts
            c.ends += ends
            c.trace_ids += [t.hex() for t in trace_ids]
            c.span_ids += [s.hex() for s in span_ids]
            c.parent_ids += [p.hex() for p in parent_ids] if any(parent_ids) else [""] * n
            c.trace_states += [s.trace_state for s in spans]
            c.names += [s.name for s in spans]
            c.kinds += [s.kind for s in spans]
            statuses = [s.status for s in spans]
            c.status_codes += [st.code for st in statuses]
            c.status_messages += [st.message for st in statuses]
            c.services += [service] * n
            c.scope_names += [scope_spans.scope.name] * n
            c.scope_versions += [scope_spans.scope.version] * n
            c.res_keys += r_keys * n
            c.res_values += r_values * n
            last = c.res_offsets[-1]
            c.res_offsets += [last + r_len * (i + 1) for i in range(n)]
            c.add_attributes(spans)
            if any(s.events for s in spans) or any(s.links for s in spans):
                c.add_events_links(spans)
            else:
                c.event_offsets += [len(c.events)] * n
                c.link_offsets += [len(c.links)] * n
            c.span_runs(first, resource_run, resource_session, sessions)
    ended_roots = {
        run_id
        for run_id, parent, end in zip(c.run_ids, c.parent_ids, c.ends, strict=True)
        if end and not parent
    } if "" in c.parent_ids else set()  # fmt: skip
    batch = pa.RecordBatch.from_arrays(_arrays(c), schema=SPAN_SCHEMA)
    return Converted(batch, batch.num_rows, rejected, problems, set(c.run_ids), ended_roots, sessions)


def _names(codes: list[int], names: tuple[str, ...]) -> list[str]:
    """Enum values as their names (the first name for values out of range)."""
    if codes and (min(codes) < 0 or max(codes) >= len(names)):
        codes = [code if 0 <= code < len(names) else 0 for code in codes]
    return list(map(names.__getitem__, codes))


def _arrays(c: _Columns) -> list[pa.Array]:
    # Plain Python for the computed columns, not Arrow kernels: each kernel call gives up the GIL
    # and waits to get it back, which is slow while other requests keep it busy.
    string = pa.string()
    ends = c.ends
    return [
        pa.array(c.timestamps, _TS),
        pa.array(c.trace_ids, string),
        pa.array(c.span_ids, string),
        pa.array(c.parent_ids, string),
        pa.array(c.trace_states, string),
        pa.array(c.names, string),
        pa.array(_names(c.kinds, SPAN_KINDS), string),
        pa.array(c.services, string),
        _flat_map_array(c.res_offsets, c.res_keys, c.res_values),
        pa.array(c.scope_names, string),
        pa.array(c.scope_versions, string),
        _flat_map_array(c.attr_offsets, c.attr_keys, c.attr_values),
        pa.array([max(0, e - s) if e else None for s, e in zip(c.timestamps, ends, strict=True)], pa.int64()),
        pa.array(_names(c.status_codes, STATUS_CODES), string),
        pa.array(c.status_messages, string),
        pa.ListArray.from_arrays(
            pa.array(c.event_offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [
                    pa.array([e[0] for e in c.events], _TS),
                    pa.array([e[1] for e in c.events], string),
                    _map_array([e[2] for e in c.events]),
                ],
                fields=list(EVENT),
            ),
            type=pa.list_(EVENT),
        ),
        pa.ListArray.from_arrays(
            pa.array(c.link_offsets, pa.int32()),
            pa.StructArray.from_arrays(
                [
                    pa.array([x[0] for x in c.links], string),
                    pa.array([x[1] for x in c.links], string),
                    pa.array([x[2] for x in c.links], string),
                    _map_array([x[3] for x in c.links]),
                ],
                fields=list(LINK),
            ),
            type=pa.list_(LINK),
        ),
        pa.array(c.run_ids, string),
        pa.array([END if e else START for e in ends], string),
    ]


def warm_up() -> None:
    """Convert one tiny request, so that the first client does not pay for Arrow's lazy imports."""
    request = ExportTraceServiceRequest()
    span = request.resource_spans.add().scope_spans.add().spans.add()
    span.trace_id, span.span_id, span.name = b"\x01" * 16, b"\x01" * 8, "warm-up"
    span.start_time_unix_nano, span.end_time_unix_nano = 1, 2
    convert(request)


__all__ = ["SESSION_KEYS", "Converted", "any_value", "as_string", "attributes_text", "convert", "warm_up"]
