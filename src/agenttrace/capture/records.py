"""OpenTelemetry SDK spans to Arrow record batches in the store's span schema.

`spans_to_batch` runs on the batch processor's thread for every span, competing with the traced
program for the GIL, so it does as few Python-level operations per span as it can:

- each field is read for all spans at once (`map(attrgetter(...), spans)`, which stays in C);
- what spans share (resource, scope, status, trace state, span kind, trace id) is converted once per
  distinct object in the batch, and a column that holds one value is one value repeated;
- span ids become hex in one call per column (`array` + `bytes.hex`), and every string column goes
  into Arrow as raw buffers (UTF-8 bytes joined in one call, offsets packed in one call): no
  `pa.array`, which also keeps pandas from being imported (pyarrow does on its first use);
- map columns are flat key and value lists (`chain.from_iterable`) plus offsets; only values that
  are not strings already go through Python, one call each.

Spans that are not the SDK's own classes take the same path through their public properties. Spans
still open (`start` records) have their attributes, events and links copied (under the SDK's lock
where it has one), since the program may change them meanwhile.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from itertools import chain, repeat
from operator import attrgetter, itemgetter
from typing import Any

import pyarrow as pa
from opentelemetry.attributes import BoundedAttributes
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, Span
from opentelemetry.sdk.util import BoundedList
from opentelemetry.trace import SpanContext, SpanKind, StatusCode

from ..constants import RUN_ID
from ..ids import is_safe_run_id
from ..store.schema import ATTRIBUTES, END, EVENT, LINK, SPAN_SCHEMA, START, TIMESTAMP
from . import active_runs
from .columns import (
    duration_column,
    fixed_offsets,
    int64s,
    list_offsets,
    offsets_of,
    one_object,
    parent_column,
    repeated_string,
    repeated_strings,
    span_id_column,
    string_column,
    strings,
    timestamps,
    trace_id_column,
)

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


class _Stringifiers(dict[type, Callable[[Any], str]]):
    """Value type -> a function that writes a value of exactly that type as `attribute_value` does:
    builtins for the common types (cheaper calls), `attribute_value` for any other."""

    def __missing__(self, kind: type) -> Callable[[Any], str]:
        return attribute_value


_STRINGIFY = _Stringifiers(
    {
        int: int.__repr__,
        float: float.__repr__,
        bool: {True: "true", False: "false"}.__getitem__,
        bytes: bytes.hex,
    }
)


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


def _plain(attributes: Any) -> dict[str, Any]:
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


def _map_array(dicts: list[dict[str, Any]], all_strings: bool = False) -> pa.Array:
    """A MAP(VARCHAR, VARCHAR) column from a list of plain dicts (values stringified)."""
    keys = list(chain.from_iterable(dicts))
    values = list(chain.from_iterable(map(dict.values, dicts)))
    if not all_strings:  # cheaper than finding out first whether all are strings (spans have numbers)
        stringify = _STRINGIFY
        values = [v if type(v) is str else stringify[type(v)](v) for v in values]
    return pa.MapArray.from_arrays(
        pa.Array.from_buffers(pa.int32(), len(dicts) + 1, [None, offsets_of(map(len, dicts))]),
        strings(keys),
        strings(values),
        type=ATTRIBUTES,
    )


# -- the span's fields -----------------------------------------------------------------------------

_SDK_SPANS = {ReadableSpan, Span}
"""Classes whose private fields are read directly (their public properties only return them)."""


class _ResourceCache:
    """Per resource (by identity): its attributes as strings, service name and valid run id, and its
    ResourceAttributes column for a batch of n rows (a slice of one built for the largest batch)."""

    def __init__(self) -> None:
        self._cache: dict[int, tuple[Resource, dict[str, str], str, str | None]] = {}
        self._columns: dict[int, tuple[Resource, pa.Array]] = {}

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

    def attributes_column(self, resource: Resource, n: int) -> pa.Array:
        hit = self._columns.get(id(resource))
        if hit is None or hit[0] is not resource or len(hit[1]) < n:
            attributes = self.get(resource)[0]
            capacity = max(n, 4096)
            column = pa.MapArray.from_arrays(
                pa.Array.from_buffers(
                    pa.int32(), capacity + 1, [None, fixed_offsets(len(attributes), capacity)]
                ),
                repeated_strings(list(attributes), capacity),
                repeated_strings(list(attributes.values()), capacity),
                type=ATTRIBUTES,
            )
            if len(self._columns) > 8:
                self._columns.clear()
            hit = self._columns[id(resource)] = (resource, column)
        return hit[1].slice(0, n)


_resources = _ResourceCache()


def _resource_columns(resources: list[Resource]) -> tuple[pa.Array, pa.Array, list[str | None]]:
    """ServiceName and ResourceAttributes columns, and each span's resource run id (or None),
    converting each distinct resource once (a process usually has one)."""
    n = len(resources)
    if one_object(resources):
        _, service, run_id = _resources.get(resources[0])
        return repeated_string(service, n), _resources.attributes_column(resources[0], n), [run_id] * n
    ids = list(map(id, resources))
    distinct = {key: _resources.get(resource) for key, resource in zip(ids, resources, strict=True)}
    converted = list(map(distinct.__getitem__, ids))
    return (
        strings(list(map(itemgetter(1), converted))),
        _map_array(list(map(itemgetter(0), converted)), all_strings=True),
        list(map(itemgetter(2), converted)),
    )


def _attribute_dicts(objects: list[Any], settled: bool) -> list[dict[str, Any]]:
    """Plain dicts of span attributes. `settled`: the spans have ended, so the SDK's attribute
    mappings are immutable and their inner dicts can be read without a copy."""
    if (
        settled
        and set(map(type, objects)) == {BoundedAttributes}
        and all(map(attrgetter("_immutable"), objects))
    ):
        return list(map(attrgetter("_dict"), objects))
    return list(map(_plain, objects))


def _item_lists(objects: list[Any], settled: bool) -> list[Sequence[Any]]:
    """Spans' events or links: the SDK's BoundedList's deque, without a copy, when the spans have
    ended (nothing can be added then); else a copy."""
    if settled and set(map(type, objects)) == {BoundedList}:
        return list(map(attrgetter("_dq"), objects))
    return [tuple(items) if items else () for items in objects]


def _run_ids(
    attr_dicts: list[dict[str, Any]],
    resource_runs: list[str | None],
    trace_ids: list[int],
    trace_hex: dict[int, str],
) -> list[str] | None:
    """Each span's run: its `agenttrace.run.id` attribute, else its resource's, else the run that
    started its trace in this process, else its trace id in hex. None: the trace id, for every span."""
    n = len(attr_dicts)
    runs: list[Any] = list(map(dict.get, attr_dicts, repeat(RUN_ID)))
    try:
        distinct = set(runs)
    except TypeError:  # an unhashable value: not a run id
        runs = [r if isinstance(r, str) else None for r in runs]
        distinct = set(runs)
    valid = {r for r in distinct if isinstance(r, str) and is_safe_run_id(r)}
    if len(valid) == len(distinct):
        return runs
    active = bool(active_runs._TRACE_RUNS)
    if runs.count(None) == n:  # the usual case outside a run: no span names one
        if resource_runs.count(None) == n:
            if not active:
                return None
            return [active_runs.run_for_trace(t) or trace_hex[t] for t in trace_ids]
        if resource_runs.count(resource_runs[0]) == n:
            return [resource_runs[0]] * n  # type: ignore[list-item]
    by_trace = {t: (active and active_runs.run_for_trace(t)) or trace_hex[t] for t in set(trace_ids)}
    return [
        run if run in valid else (resource_run or by_trace[trace_id])
        for run, resource_run, trace_id in zip(runs, resource_runs, trace_ids, strict=True)
    ]


def _trace_state(state: Any) -> str:
    return state.to_header() if state else ""


def _status_code(status: Any) -> str:
    return STATUS_CODES.get(status.status_code, "Unset")


def _status_message(status: Any) -> str:
    return status.description or ""


def _scope_name(scope: Any) -> str:
    return scope.name if scope else ""


def _scope_version(scope: Any) -> str:
    return (scope.version or "") if scope else ""


def _kind_name(kind: Any) -> str:
    return SPAN_KINDS.get(kind, "Unspecified")


_KIND_NAMES_BY_ID = {id(kind): name for kind, name in SPAN_KINDS.items()}


def _kind_column(kinds: list[Any]) -> pa.Array:
    if not one_object(kinds):
        names = list(map(_KIND_NAMES_BY_ID.get, map(id, kinds)))
        if None not in names:
            return strings(names)  # type: ignore[arg-type]
    return string_column(kinds, _kind_name)


def _field(spans: list[ReadableSpan], name: str, private: bool) -> list[Any]:
    return list(map(attrgetter(f"_{name}" if private else name), spans))


def spans_to_batch(spans: Iterable[ReadableSpan], record_type: str = END) -> pa.RecordBatch:
    """Convert finished (`end`) or just-started (`start`) spans into one record batch."""
    spans = list(spans)
    private = set(map(type, spans)) <= _SDK_SPANS
    ctxs = _field(spans, "context", private)
    if None in ctxs:
        spans = [span for span, ctx in zip(spans, ctxs, strict=True) if ctx is not None]
        ctxs = [ctx for ctx in ctxs if ctx is not None]
    if not set(map(type, ctxs)) <= {SpanContext}:  # a SpanContext is a tuple (trace id, span id, ...)
        ctxs = [SpanContext(c.trace_id, c.span_id, c.is_remote, c.trace_flags, c.trace_state) for c in ctxs]
    n = len(spans)
    settled = private and record_type == END

    def field(name: str) -> list[Any]:
        return _field(spans, name, private)

    trace_ids = list(map(itemgetter(0), ctxs))
    trace_column, trace_hex = trace_id_column(trace_ids)
    starts = field("start_time")
    service_column, resource_column, resource_runs = _resource_columns(field("resource"))
    scopes = field("instrumentation_scope")
    attr_dicts = _attribute_dicts(field("attributes"), settled)
    if record_type == END:
        statuses = field("status")
        durations = duration_column(starts, field("end_time"))
        status_codes = string_column(statuses, _status_code)
        status_messages = string_column(statuses, _status_message)
    else:
        durations = pa.nulls(n, pa.int64())
        status_codes = repeated_string("Unset", n)
        status_messages = repeated_string("", n)
    runs = _run_ids(attr_dicts, resource_runs, trace_ids, trace_hex)
    columns = [
        timestamps(starts),
        trace_column,
        span_id_column(list(map(itemgetter(1), ctxs))),
        parent_column(field("parent")),
        string_column(list(map(itemgetter(4), ctxs)), _trace_state),
        strings(field("name")),
        _kind_column(field("kind")),
        service_column,
        resource_column,
        string_column(scopes, _scope_name),
        string_column(scopes, _scope_version),
        _map_array(attr_dicts),
        durations,
        status_codes,
        status_messages,
        _events_column(_item_lists(field("events"), settled)),
        _links_column(_item_lists(field("links"), settled)),
        trace_column if runs is None else string_column(runs, str),
        repeated_string(record_type, n),
    ]
    return pa.RecordBatch.from_arrays(columns, schema=SPAN_SCHEMA)


_empty_lists: dict[pa.DataType, pa.Array] = {}


def _no_items(item_type: pa.DataType, n: int) -> pa.Array:
    """A list column of n empty lists (a slice of one kept for the largest batch)."""
    column = _empty_lists.get(item_type)
    if column is None or len(column) < n:
        column = _empty_lists[item_type] = pa.ListArray.from_arrays(
            pa.Array.from_buffers(pa.int32(), max(n, 4096) + 1, [None, fixed_offsets(0, max(n, 4096))]),
            pa.nulls(0, item_type),
            type=pa.list_(item_type),
        )
    return column.slice(0, n)


def _events_column(per_span: list[Sequence[Any]]) -> pa.Array:
    if not any(per_span):
        return _no_items(EVENT, len(per_span))
    events = list(chain.from_iterable(per_span))
    return pa.ListArray.from_arrays(
        list_offsets(per_span),
        pa.StructArray.from_arrays(
            [
                int64s([e.timestamp for e in events], TIMESTAMP),
                strings([e.name for e in events]),
                _map_array([_plain(e.attributes) for e in events]),
            ],
            fields=list(EVENT),
        ),
        type=pa.list_(EVENT),
    )


def _links_column(per_span: list[Sequence[Any]]) -> pa.Array:
    if not any(per_span):
        return _no_items(LINK, len(per_span))
    links = list(chain.from_iterable(per_span))
    ctxs = [link.context for link in links]
    return pa.ListArray.from_arrays(
        list_offsets(per_span),
        pa.StructArray.from_arrays(
            [
                strings([f"{c.trace_id:032x}" for c in ctxs]),
                strings([f"{c.span_id:016x}" for c in ctxs]),
                strings([_trace_state(c.trace_state) for c in ctxs]),
                _map_array([_plain(link.attributes) for link in links]),
            ],
            fields=list(LINK),
        ),
        type=pa.list_(LINK),
    )


__all__ = ["END", "START", "attribute_value", "run_id_for", "spans_to_batch"]
