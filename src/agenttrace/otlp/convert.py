"""OTLP `ExportTraceServiceRequest` to Arrow record batches in the store's span schema.

A span is kept or rejected on its own: one with a malformed id is counted and described for the
response's `partial_success`, and the rest of the request is stored. A span whose end time is 0
has not ended: it becomes a `start` record, like the pending-span processor's.
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

    @property
    def message(self) -> str:
        if not self.rejected:
            return ""
        shown = "; ".join(self.problems[:3])
        more = f" (and {len(self.problems) - 3} more)" if len(self.problems) > 3 else ""
        return f"{self.rejected} span(s) rejected: {shown}{more}"


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


def _id_problem(name: str, raw: bytes, size: int, optional: bool = False) -> str | None:
    if optional and not raw:
        return None
    if len(raw) != size:
        return f"{name} must be {size} bytes, got {len(raw)}"
    if not any(raw):
        return f"{name} must not be all zeros"
    return None


def _run_id(span_attrs: dict[str, str], resource_run: str | None, trace_hex: str) -> str:
    candidate = span_attrs.get(RUN_ID)
    if candidate is not None and is_safe_run_id(candidate):
        return candidate
    return resource_run or trace_hex


def convert(request: ExportTraceServiceRequest) -> Converted:
    """Every valid span of the request as one record batch."""
    cols: dict[str, list[Any]] = {name: [] for name in SPAN_SCHEMA.names}
    resources: list[dict[str, str]] = []
    attributes: list[dict[str, str]] = []
    event_offsets = [0]
    events: list[tuple[int, str, dict[str, str]]] = []
    link_offsets = [0]
    links: list[tuple[str, str, str, dict[str, str]]] = []
    rejected = 0
    problems: list[str] = []
    run_ids: set[str] = set()
    ended_roots: set[str] = set()
    for resource_spans in request.resource_spans:
        resource = _attrs(resource_spans.resource.attributes)
        service = resource.get("service.name", "")
        resource_run = resource.get(RUN_ID)
        if resource_run is not None and not is_safe_run_id(resource_run):
            resource_run = None
        for scope_spans in resource_spans.scope_spans:
            scope_name = scope_spans.scope.name
            scope_version = scope_spans.scope.version
            for span in scope_spans.spans:
                problem = (
                    _id_problem("trace_id", span.trace_id, 16)
                    or _id_problem("span_id", span.span_id, 8)
                    or _id_problem("parent_span_id", span.parent_span_id, 8, optional=True)
                )
                if problem is None:
                    bad_link = next(
                        (
                            p
                            for link in span.links
                            if (p := _id_problem("link trace_id", link.trace_id, 16))
                            or (p := _id_problem("link span_id", link.span_id, 8))
                        ),
                        None,
                    )
                    problem = bad_link
                if problem is not None:
                    rejected += 1
                    if len(problems) < 10:
                        problems.append(f"span {span.name[:80]!r}: {problem}")
                    continue
                trace_hex = span.trace_id.hex()
                span_attrs = _attrs(span.attributes)
                run_id = _run_id(span_attrs, resource_run, trace_hex)
                run_ids.add(run_id)
                ended = span.end_time_unix_nano != 0
                start = span.start_time_unix_nano
                cols["Timestamp"].append(start)
                cols["TraceId"].append(trace_hex)
                cols["SpanId"].append(span.span_id.hex())
                cols["ParentSpanId"].append(span.parent_span_id.hex())
                cols["TraceState"].append(span.trace_state)
                cols["SpanName"].append(span.name)
                cols["SpanKind"].append(SPAN_KINDS[span.kind] if 0 <= span.kind < 6 else "Unspecified")
                cols["ServiceName"].append(service)
                resources.append(resource)
                cols["ScopeName"].append(scope_name)
                cols["ScopeVersion"].append(scope_version)
                attributes.append(span_attrs)
                cols["Duration"].append(max(0, span.end_time_unix_nano - start) if ended else None)
                code = span.status.code
                cols["StatusCode"].append(STATUS_CODES[code] if 0 <= code < 3 else "Unset")
                cols["StatusMessage"].append(span.status.message)
                for event in span.events:
                    events.append((event.time_unix_nano, event.name, _attrs(event.attributes)))
                event_offsets.append(len(events))
                for link in span.links:
                    links.append(
                        (link.trace_id.hex(), link.span_id.hex(), link.trace_state, _attrs(link.attributes))
                    )
                link_offsets.append(len(links))
                cols["RunId"].append(run_id)
                cols["RecordType"].append(END if ended else START)
                if ended and not span.parent_span_id:
                    ended_roots.add(run_id)
    string = pa.string()
    arrays = [
        pa.array(cols["Timestamp"], _TS),
        *(pa.array(cols[c], string) for c in SPAN_SCHEMA.names[1:8]),
        _map_array(resources),
        pa.array(cols["ScopeName"], string),
        pa.array(cols["ScopeVersion"], string),
        _map_array(attributes),
        pa.array(cols["Duration"], pa.int64()),
        pa.array(cols["StatusCode"], string),
        pa.array(cols["StatusMessage"], string),
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
        pa.array(cols["RunId"], string),
        pa.array(cols["RecordType"], string),
    ]
    batch = pa.RecordBatch.from_arrays(arrays, schema=SPAN_SCHEMA)
    return Converted(batch, batch.num_rows, rejected, problems, run_ids, ended_roots)


__all__ = ["Converted", "any_value", "as_string", "convert"]
