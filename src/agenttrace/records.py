"""OpenTelemetry SDK spans to Arrow record batches in the store's span schema."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any

import pyarrow as pa
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from . import active_runs
from .constants import RUN_ID
from .ids import is_safe_run_id
from .store.schema import END, SPAN_SCHEMA, START

SPAN_KINDS = {
    SpanKind.INTERNAL: "Internal",
    SpanKind.SERVER: "Server",
    SpanKind.CLIENT: "Client",
    SpanKind.PRODUCER: "Producer",
    SpanKind.CONSUMER: "Consumer",
}
STATUS_CODES = {StatusCode.UNSET: "Unset", StatusCode.OK: "Ok", StatusCode.ERROR: "Error"}


def attribute_value(value: Any) -> str:
    """An attribute value as the ClickHouse exporter's AsString() writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    if isinstance(value, Iterable):
        return json.dumps(list(value), default=str, ensure_ascii=False)
    return str(value)


def attribute_pairs(attributes: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    if not attributes:
        return []
    return [(k, attribute_value(v)) for k, v in attributes.items()]


def run_id_for(span_attrs: Mapping[str, Any] | None, resource_attrs: Mapping[str, Any], trace_id: int) -> str:
    """A span's run: its `agenttrace.run.id` attribute, its resource's, the run that started its
    trace in this process, else its trace id in hex."""
    for source in (span_attrs, resource_attrs):
        if source:
            value = source.get(RUN_ID)
            if isinstance(value, str) and is_safe_run_id(value):
                return value
    return active_runs.run_for_trace(trace_id) or f"{trace_id:032x}"


class _ResourceCache:
    def __init__(self) -> None:
        self._cache: dict[int, tuple[Resource, list[tuple[str, str]], str]] = {}

    def get(self, resource: Resource) -> tuple[list[tuple[str, str]], str]:
        hit = self._cache.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1], hit[2]
        pairs = attribute_pairs(resource.attributes)
        service = str(resource.attributes.get("service.name", ""))
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[id(resource)] = (resource, pairs, service)
        return pairs, service


_resources = _ResourceCache()


def spans_to_batch(spans: Iterable[ReadableSpan], record_type: str = END) -> pa.RecordBatch:
    """Convert finished (`end`) or just-started (`start`) spans into one record batch."""
    cols: dict[str, list[Any]] = {name: [] for name in SPAN_SCHEMA.names}
    ts, tid, sid, psid, tstate = (
        cols[c] for c in ("Timestamp", "TraceId", "SpanId", "ParentSpanId", "TraceState")
    )
    name, kind, service, res, scope = (
        cols[c] for c in ("SpanName", "SpanKind", "ServiceName", "ResourceAttributes", "ScopeName")
    )
    scope_v, attrs, dur, status, status_msg = (
        cols[c] for c in ("ScopeVersion", "SpanAttributes", "Duration", "StatusCode", "StatusMessage")
    )
    events, links, run, rtype = (cols[c] for c in ("Events", "Links", "RunId", "RecordType"))
    is_end = record_type == END
    for span in spans:
        ctx = span.context
        if ctx is None:
            continue
        resource_pairs, service_name = _resources.get(span.resource)
        span_attrs = span.attributes
        start = span.start_time or 0
        ts.append(start)
        tid.append(f"{ctx.trace_id:032x}")
        sid.append(f"{ctx.span_id:016x}")
        parent = span.parent
        psid.append(f"{parent.span_id:016x}" if parent is not None else "")
        tstate.append(ctx.trace_state.to_header() if ctx.trace_state else "")
        name.append(span.name)
        kind.append(SPAN_KINDS.get(span.kind, "Unspecified"))
        service.append(service_name)
        res.append(resource_pairs)
        scope_info = span.instrumentation_scope
        scope.append(scope_info.name if scope_info else "")
        scope_v.append((scope_info.version or "") if scope_info else "")
        attrs.append(attribute_pairs(span_attrs))
        if is_end:
            dur.append(max(0, (span.end_time or start) - start))
            status.append(STATUS_CODES.get(span.status.status_code, "Unset"))
            status_msg.append(span.status.description or "")
        else:
            dur.append(None)
            status.append("Unset")
            status_msg.append("")
        events.append(
            [
                {"Timestamp": e.timestamp, "Name": e.name, "Attributes": attribute_pairs(e.attributes)}
                for e in span.events
            ]
            if span.events
            else []
        )
        links.append(
            [
                {
                    "TraceId": f"{link.context.trace_id:032x}",
                    "SpanId": f"{link.context.span_id:016x}",
                    "TraceState": link.context.trace_state.to_header() if link.context.trace_state else "",
                    "Attributes": attribute_pairs(link.attributes),
                }
                for link in span.links
            ]
            if span.links
            else []
        )
        run.append(run_id_for(span_attrs, span.resource.attributes, ctx.trace_id))
        rtype.append(record_type)
    return pa.RecordBatch.from_pydict(cols, schema=SPAN_SCHEMA)


__all__ = ["END", "START", "attribute_value", "run_id_for", "spans_to_batch"]
