"""OpenTelemetry SDK spans to Arrow record batches in the store's span schema.

Map columns are built as flat key and value arrays plus offsets, not through lists of tuples.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from itertools import accumulate
from typing import Any

import pyarrow as pa
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind, StatusCode

from ..constants import RUN_ID
from ..ids import is_safe_run_id
from ..store.schema import ATTRIBUTES, END, EVENT, LINK, SPAN_SCHEMA, START
from . import active_runs

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
    return [(k, attribute_value(v)) for k, v in _plain(attributes).items()]


def run_id_for(span_attrs: Mapping[str, Any] | None, resource_attrs: Mapping[str, Any], trace_id: int) -> str:
    """A span's run: its `agenttrace.run.id` attribute, its resource's, the run that started its
    trace in this process, else its trace id in hex."""
    for source in (span_attrs, resource_attrs):
        if source:
            value = source.get(RUN_ID)
            if isinstance(value, str) and is_safe_run_id(value):
                return value
    return active_runs.run_for_trace(trace_id) or f"{trace_id:032x}"


def _map_array(dicts: list[Any]) -> pa.Array:
    """A MAP(VARCHAR, VARCHAR) column from a list of plain dicts (values stringified)."""
    offsets = [0, *accumulate(map(len, dicts))]
    keys = [k for d in dicts for k in d]
    values = [v if type(v) is str else attribute_value(v) for d in dicts for v in d.values()]
    return pa.MapArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.array(keys, pa.string()),
        pa.array(values, pa.string()),
        type=ATTRIBUTES,
    )


def _plain(attributes: Any) -> Mapping[str, Any]:
    """An attribute mapping as a plain dict that will not change under us."""
    if not attributes:
        return {}
    inner = getattr(attributes, "_dict", None)
    if isinstance(inner, dict):
        if getattr(attributes, "_immutable", False):
            return inner
        lock = getattr(attributes, "_lock", None)
        if lock is not None:
            with lock:
                return dict(inner)
    return dict(attributes)


def _items_of(span: ReadableSpan, private: str, public: str) -> Sequence[Any]:
    """A span's events or links: the SDK's BoundedList's deque, without a copy per call."""
    inner = getattr(getattr(span, private, None), "_dq", None)
    return inner if inner is not None else getattr(span, public)


class _ResourceCache:
    def __init__(self) -> None:
        self._cache: dict[int, tuple[Resource, dict[str, str], str, str | None]] = {}

    def get(self, resource: Resource) -> tuple[dict[str, str], str, str | None]:
        """The resource's attributes as strings, its service name, and its valid run id if any."""
        hit = self._cache.get(id(resource))
        if hit is not None and hit[0] is resource:
            return hit[1], hit[2], hit[3]
        attributes = dict(attribute_pairs(resource.attributes))
        service = str(resource.attributes.get("service.name", ""))
        run_id = resource.attributes.get(RUN_ID)
        safe_run = run_id if isinstance(run_id, str) and is_safe_run_id(run_id) else None
        if len(self._cache) > 64:
            self._cache.clear()
        self._cache[id(resource)] = (resource, attributes, service, safe_run)
        return attributes, service, safe_run


_resources = _ResourceCache()


def _run_ids(
    attr_dicts: list[Mapping[str, Any]], resource_runs: list[str | None], trace_ids: list[int]
) -> list[str]:
    safe: dict[Any, bool] = {}
    runs = []
    active = bool(active_runs._TRACE_RUNS)
    for attributes, resource_run, trace_id in zip(attr_dicts, resource_runs, trace_ids, strict=True):
        run_id = attributes.get(RUN_ID)
        if run_id is not None:
            ok = safe.get(run_id)
            if ok is None:
                ok = safe[run_id] = isinstance(run_id, str) and is_safe_run_id(run_id)
            if ok:
                runs.append(run_id)
                continue
        runs.append(resource_run or (active and active_runs.run_for_trace(trace_id)) or f"{trace_id:032x}")
    return runs


def spans_to_batch(spans: Iterable[ReadableSpan], record_type: str = END) -> pa.RecordBatch:
    """Convert finished (`end`) or just-started (`start`) spans into one record batch.

    This runs on the exporter's thread for every span, competing with the traced program for the
    GIL, so it is written column by column with comprehensions rather than span by span.
    """
    spans = [span for span in spans if span.context is not None]
    n = len(spans)
    ctxs = [span.context for span in spans]
    trace_ids = [ctx.trace_id for ctx in ctxs]  # type: ignore[union-attr]
    parents = [span.parent for span in spans]
    starts = [span.start_time or 0 for span in spans]
    resources = [_resources.get(span.resource) for span in spans]
    scopes = [span.instrumentation_scope for span in spans]
    attr_dicts = [_plain(getattr(span, "_attributes", None) or span.attributes) for span in spans]
    if record_type == END:
        ends = [span.end_time for span in spans]
        durations: list[int | None] = [
            max(0, (end or start) - start) for start, end in zip(starts, ends, strict=True)
        ]
        statuses = [span.status for span in spans]
        status_codes = [STATUS_CODES.get(status.status_code, "Unset") for status in statuses]
        status_msgs = [status.description or "" for status in statuses]
    else:
        durations = [None] * n
        status_codes = ["Unset"] * n
        status_msgs = [""] * n
    string = pa.string()
    columns = [
        pa.array(starts, SPAN_SCHEMA.field("Timestamp").type),
        pa.array([f"{t:032x}" for t in trace_ids], string),
        pa.array([f"{ctx.span_id:016x}" for ctx in ctxs], string),  # type: ignore[union-attr]
        pa.array([f"{p.span_id:016x}" if p is not None else "" for p in parents], string),
        pa.array([ctx.trace_state.to_header() if ctx.trace_state else "" for ctx in ctxs], string),  # type: ignore[union-attr]
        pa.array([span.name for span in spans], string),
        pa.array([SPAN_KINDS.get(span.kind, "Unspecified") for span in spans], string),
        pa.array([r[1] for r in resources], string),
        _map_array([r[0] for r in resources]),
        pa.array([sc.name if sc else "" for sc in scopes], string),
        pa.array([(sc.version or "") if sc else "" for sc in scopes], string),
        _map_array(attr_dicts),
        pa.array(durations, pa.int64()),
        pa.array(status_codes, string),
        pa.array(status_msgs, string),
        _events_column([_items_of(span, "_events", "events") for span in spans]),
        _links_column([_items_of(span, "_links", "links") for span in spans]),
        pa.array(_run_ids(attr_dicts, [r[2] for r in resources], trace_ids), string),
        pa.array([record_type] * n, string),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SPAN_SCHEMA)


def _events_column(per_span: list[Sequence[Any]]) -> pa.Array:
    offsets = [0, *accumulate(map(len, per_span))]
    events = [event for span_events in per_span for event in span_events]
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays(
            [
                pa.array([e.timestamp for e in events], EVENT.field("Timestamp").type),
                pa.array([e.name for e in events], pa.string()),
                _map_array([_plain(e.attributes) for e in events]),
            ],
            fields=list(EVENT),
        ),
        type=pa.list_(EVENT),
    )


def _links_column(per_span: list[Sequence[Any]]) -> pa.Array:
    offsets = [0, *accumulate(map(len, per_span))]
    ctxs = [link.context for span_links in per_span for link in span_links]
    attributes = [_plain(link.attributes) for span_links in per_span for link in span_links]
    return pa.ListArray.from_arrays(
        pa.array(offsets, pa.int32()),
        pa.StructArray.from_arrays(
            [
                pa.array([f"{c.trace_id:032x}" for c in ctxs], pa.string()),
                pa.array([f"{c.span_id:016x}" for c in ctxs], pa.string()),
                pa.array([c.trace_state.to_header() if c.trace_state else "" for c in ctxs], pa.string()),
                _map_array(attributes),
            ],
            fields=list(LINK),
        ),
        type=pa.list_(LINK),
    )


__all__ = ["END", "START", "attribute_value", "run_id_for", "spans_to_batch"]
