"""OTLP log records and metric data points to Arrow record batches in the store's schemas
(`LOG_SCHEMA`, `SAMPLE_SCHEMA`; see store/schema.py).

A record (a log record, a data point) is kept or rejected on its own, as a span is: a log record
whose trace or span id has the wrong length, or a time the store cannot hold (nanoseconds at or
past 2^63), is counted and described for the response's `partial_success`, and the rest of the
request is stored. A log record with no time takes its observed time, else the time it was
received; a data point with no time, the time it was received.

Which run a record belongs to, first match wins:
1. its `agenttrace.run.id`: the record's attribute, else its resource's (`agenttrace run` sets the
   resource attribute through OTEL_RESOURCE_ATTRIBUTES);
2. its trace id (a log record's), as for spans: a record of a trace belongs to the run whose id is
   its trace id;
3. its agent session id (`convert.SESSION_KEYS`: `session.id`, `conversation.id`,
   `gen_ai.conversation.id`; the record's attribute, else its resource's): the run this receiver
   last saw a span, log record or data point of that session in (by 1 or 2), from the last
   `MAX_SESSIONS` sessions (`SessionRuns`); else the session id itself, when it can name a run (a
   session's records then form a run, as a trace's spans do);
4. else the run `unlinked`.
A receiver made for one run (`agenttrace run`'s) files everything under its run regardless.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from typing import Any

import pyarrow as pa
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

from ..constants import RUN_ID
from ..ids import is_safe_run_id
from ..store.schema import LOG_SCHEMA, SAMPLE_SCHEMA
from .convert import (
    _ZERO_SPAN,
    _ZERO_TRACE,
    MAX_TIME_NS,
    SESSION_KEYS,
    Converted,
    _flat_map_array,
    as_string,
    attributes_text,
)

UNLINKED_RUN = "unlinked"
"""The run of records that name no run, no trace and no session."""
MAX_SESSIONS = 16_384
"""Sessions a receiver remembers the run of."""
MAX_PROBLEMS = 10
_TS = LOG_SCHEMA.field("Timestamp").type
_METRIC_TYPES = {
    "gauge": "Gauge",
    "sum": "Sum",
    "histogram": "Histogram",
    "exponential_histogram": "ExponentialHistogram",
    "summary": "Summary",
}


class SessionRuns:
    """Agent session id -> the run it was last seen in; the last `limit` sessions. Thread-safe."""

    def __init__(self, limit: int = MAX_SESSIONS) -> None:
        self.limit = limit
        self._runs: OrderedDict[str, str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, session: str) -> str | None:
        with self._lock:
            return self._runs.get(session)

    def learn(self, pairs: dict[str, str]) -> None:
        if not pairs:
            return
        with self._lock:
            for session, run_id in pairs.items():
                self._runs[session] = run_id
                self._runs.move_to_end(session)
            while len(self._runs) > self.limit:
                self._runs.popitem(last=False)

    def __len__(self) -> int:
        return len(self._runs)


class _Linker:
    """Finds each record's run (see the module docstring) and notes the sessions it learns."""

    def __init__(self, sessions: SessionRuns | None) -> None:
        self.sessions = sessions
        self.learned: dict[str, str] = {}
        self.run_ids: set[str] = set()

    def run(self, explicit: str | None, trace_hex: str, session: str | None) -> str:
        run_id = explicit or trace_hex or None
        if run_id is not None:
            if session:
                self.learned[session] = run_id
        elif session:
            run_id = self.learned.get(session) or (self.sessions.get(session) if self.sessions else None)
            if run_id is None:
                run_id = session if is_safe_run_id(session) else UNLINKED_RUN
        else:
            run_id = UNLINKED_RUN
        self.run_ids.add(run_id)
        return run_id


def _safe_run(value: str | None) -> str | None:
    return value if value and is_safe_run_id(value) else None


_KEY1, _KEY2, _KEY3 = SESSION_KEYS


def _session(attrs: dict[str, str]) -> str | None:
    """The first of SESSION_KEYS with a value (written out: this runs for every record)."""
    return attrs.get(_KEY1) or attrs.get(_KEY2) or attrs.get(_KEY3) or None


_attrs = attributes_text
"""Attributes as text (a repeated key: the last one wins)."""


class _Maps:
    """One MAP(VARCHAR, VARCHAR) column, built flat (the Arrow map layout)."""

    def __init__(self) -> None:
        self.offsets = [0]
        self.keys: list[str] = []
        self.values: list[str] = []

    def add(self, attrs: dict[str, str]) -> None:
        self.keys += attrs
        self.values += attrs.values()
        self.offsets.append(len(self.keys))

    def array(self) -> pa.Array:
        return _flat_map_array(self.offsets, self.keys, self.values)


def _message(noun: str, problems: list[str], what: str, problem: str) -> None:
    if len(problems) < MAX_PROBLEMS:
        problems.append(f"{noun} {what[:80]!r}: {problem}")


def _log_problem(record: Any) -> str | None:
    trace_id, span_id = record.trace_id, record.span_id
    if trace_id and len(trace_id) != 16:
        return f"trace_id must be 16 bytes or empty, got {len(trace_id)}"
    if span_id and len(span_id) != 8:
        return f"span_id must be 8 bytes or empty, got {len(span_id)}"
    for name in ("time_unix_nano", "observed_time_unix_nano"):
        value = getattr(record, name)
        if value > MAX_TIME_NS:
            return f"{name} {value} is past the latest time the store holds ({MAX_TIME_NS})"
    return None


def convert_logs(request: ExportLogsServiceRequest, sessions: SessionRuns | None = None) -> Converted:
    """Every valid log record of the request as one record batch (LOG_SCHEMA)."""
    cols: dict[str, list[Any]] = {name: [] for name in LOG_SCHEMA.names}
    resources, attributes = _Maps(), _Maps()
    linker = _Linker(sessions)
    rejected = 0
    problems: list[str] = []
    now = time.time_ns()
    (
        timestamps, observed_col, trace_col, span_col, flags_col, severity_texts, severity_numbers,
        services, bodies, scope_names, scope_versions, event_names, run_col,
    ) = (
        cols[name]
        for name in (
            "Timestamp", "ObservedTimestamp", "TraceId", "SpanId", "TraceFlags", "SeverityText",
            "SeverityNumber", "ServiceName", "Body", "ScopeName", "ScopeVersion", "EventName", "RunId",
        )
    )  # fmt: skip
    for resource_logs in request.resource_logs:
        resource = _attrs(resource_logs.resource.attributes)
        service = resource.get("service.name", "")
        resource_run = _safe_run(resource.get(RUN_ID))
        resource_session = _session(resource)
        for scope_logs in resource_logs.scope_logs:
            scope_name, scope_version = scope_logs.scope.name, scope_logs.scope.version
            for record in scope_logs.log_records:
                trace_id, span_id = record.trace_id, record.span_id
                at, observed = record.time_unix_nano, record.observed_time_unix_nano
                if (
                    (trace_id and len(trace_id) != 16)
                    or (span_id and len(span_id) != 8)
                    or at > MAX_TIME_NS
                    or observed > MAX_TIME_NS
                ) and (problem := _log_problem(record)) is not None:
                    rejected += 1
                    _message("log record", problems, record.event_name or as_string(record.body), problem)
                    continue
                attrs = _attrs(record.attributes)
                trace_hex = trace_id.hex() if trace_id and trace_id != _ZERO_TRACE else ""
                span_hex = span_id.hex() if span_id and span_id != _ZERO_SPAN else ""
                run_id = linker.run(
                    _safe_run(attrs.get(RUN_ID)) or resource_run,
                    trace_hex,
                    _session(attrs) or resource_session,
                )
                body = record.body
                text = body.string_value
                if not text and body.WhichOneof("value") != "string_value":
                    text = as_string(body)
                timestamps.append(at or observed or now)
                observed_col.append(observed or None)
                trace_col.append(trace_hex)
                span_col.append(span_hex)
                flags_col.append(record.flags & 0xFF)
                severity_texts.append(record.severity_text)
                severity_numbers.append(record.severity_number)
                services.append(service)
                bodies.append(text)
                resources.add(resource)
                scope_names.append(scope_name)
                scope_versions.append(scope_version)
                attributes.add(attrs)
                event_names.append(record.event_name)
                run_col.append(run_id)
    string = pa.string()
    arrays = [
        pa.array(cols["Timestamp"], _TS),
        pa.array(cols["ObservedTimestamp"], _TS),
        pa.array(cols["TraceId"], string),
        pa.array(cols["SpanId"], string),
        pa.array(cols["TraceFlags"], pa.uint8()),
        pa.array(cols["SeverityText"], string),
        pa.array(cols["SeverityNumber"], pa.int32()),
        pa.array(cols["ServiceName"], string),
        pa.array(cols["Body"], string),
        resources.array(),
        pa.array(cols["ScopeName"], string),
        pa.array(cols["ScopeVersion"], string),
        attributes.array(),
        pa.array(cols["EventName"], string),
        pa.array(cols["RunId"], string),
    ]
    batch = pa.RecordBatch.from_arrays(arrays, schema=LOG_SCHEMA)
    return Converted(
        batch, batch.num_rows, rejected, problems, linker.run_ids, set(), linker.learned, "log record"
    )


def _point_problem(point: Any) -> str | None:
    for name in ("start_time_unix_nano", "time_unix_nano"):
        value = getattr(point, name)
        if value > MAX_TIME_NS:
            return f"{name} {value} is past the latest time the store holds ({MAX_TIME_NS})"
    return None


def _optional(message: Any, name: str) -> float | None:
    return getattr(message, name) if message.HasField(name) else None


def convert_metrics(request: ExportMetricsServiceRequest, sessions: SessionRuns | None = None) -> Converted:
    """Every valid data point of the request as one record batch (SAMPLE_SCHEMA)."""
    cols: dict[str, list[Any]] = {name: [] for name in SAMPLE_SCHEMA.names}
    resources, attributes = _Maps(), _Maps()
    linker = _Linker(sessions)
    rejected = 0
    problems: list[str] = []
    now = time.time_ns()
    for resource_metrics in request.resource_metrics:
        resource = _attrs(resource_metrics.resource.attributes)
        service = resource.get("service.name", "")
        resource_run = _safe_run(resource.get(RUN_ID))
        resource_session = _session(resource)
        for scope_metrics in resource_metrics.scope_metrics:
            scope_name, scope_version = scope_metrics.scope.name, scope_metrics.scope.version
            for metric in scope_metrics.metrics:
                which = metric.WhichOneof("data")
                if which is None:
                    continue  # no data: nothing to store
                data = getattr(metric, which)
                temporality = data.aggregation_temporality if which in ("sum", "histogram") else None
                if which == "exponential_histogram":
                    temporality = data.aggregation_temporality
                monotonic = data.is_monotonic if which == "sum" else None
                for point in data.data_points:
                    problem = _point_problem(point)
                    if problem is not None:
                        rejected += 1
                        _message("data point of", problems, metric.name, problem)
                        continue
                    attrs = _attrs(point.attributes)
                    run_id = linker.run(
                        _safe_run(attrs.get(RUN_ID)) or resource_run,
                        "",
                        _session(attrs) or resource_session,
                    )
                    cols["TimeUnix"].append(point.time_unix_nano or now)
                    cols["RunId"].append(run_id)
                    cols["ServiceName"].append(service)
                    resources.add(resource)
                    cols["MetricName"].append(metric.name)
                    attributes.add(attrs)
                    cols["StartTimeUnix"].append(point.start_time_unix_nano or None)
                    cols["MetricType"].append(_METRIC_TYPES[which])
                    cols["MetricDescription"].append(metric.description)
                    cols["MetricUnit"].append(metric.unit)
                    cols["ScopeName"].append(scope_name)
                    cols["ScopeVersion"].append(scope_version)
                    cols["Flags"].append(point.flags)
                    cols["AggregationTemporality"].append(temporality)
                    cols["IsMonotonic"].append(monotonic)
                    _point_values(which, point, cols)
    maps = {"ResourceAttributes": resources, "Attributes": attributes}
    batch = pa.RecordBatch.from_arrays(
        [maps[f.name].array() if f.name in maps else pa.array(cols[f.name], f.type) for f in SAMPLE_SCHEMA],
        schema=SAMPLE_SCHEMA,
    )
    return Converted(
        batch, batch.num_rows, rejected, problems, linker.run_ids, set(), linker.learned, "data point"
    )


_POINT_COLUMNS = (
    "Value", "Count", "Sum", "Min", "Max", "BucketCounts", "ExplicitBounds", "Scale", "ZeroCount",
    "PositiveOffset", "PositiveBucketCounts", "NegativeOffset", "NegativeBucketCounts", "ValueAtQuantiles",
)  # fmt: skip


def _point_values(which: str, point: Any, cols: dict[str, list[Any]]) -> None:
    """The columns of one point's own values (null where its type has none)."""
    values: dict[str, Any] = {}
    if which in ("gauge", "sum"):
        kind = point.WhichOneof("value")
        values["Value"] = (
            point.as_double if kind == "as_double" else float(point.as_int) if kind == "as_int" else None
        )
    elif which == "histogram":
        values.update(
            Count=point.count,
            Sum=_optional(point, "sum"),
            Min=_optional(point, "min"),
            Max=_optional(point, "max"),
            BucketCounts=list(point.bucket_counts),
            ExplicitBounds=list(point.explicit_bounds),
        )
    elif which == "exponential_histogram":
        values.update(
            Count=point.count,
            Sum=_optional(point, "sum"),
            Min=_optional(point, "min"),
            Max=_optional(point, "max"),
            Scale=point.scale,
            ZeroCount=point.zero_count,
            PositiveOffset=point.positive.offset,
            PositiveBucketCounts=list(point.positive.bucket_counts),
            NegativeOffset=point.negative.offset,
            NegativeBucketCounts=list(point.negative.bucket_counts),
        )
    else:  # summary
        values.update(
            Count=point.count,
            Sum=point.sum,
            ValueAtQuantiles=[{"Quantile": q.quantile, "Value": q.value} for q in point.quantile_values],
        )
    for name in _POINT_COLUMNS:
        cols[name].append(values.get(name))


def warm_up() -> None:
    """Convert one tiny request of each signal (Arrow's first use of these types)."""
    logs = ExportLogsServiceRequest()
    logs.resource_logs.add().scope_logs.add().log_records.add().body.string_value = "warm-up"
    convert_logs(logs)
    metrics = ExportMetricsServiceRequest()
    metric = metrics.resource_metrics.add().scope_metrics.add().metrics.add()
    metric.name = "warm-up"
    metric.gauge.data_points.add().as_double = 1.0
    convert_metrics(metrics)


__all__ = ["MAX_SESSIONS", "UNLINKED_RUN", "SessionRuns", "convert_logs", "convert_metrics", "warm_up"]
