"""The Arrow schemas of stored records: one place.

Span columns follow the OpenTelemetry Collector ClickHouse exporter's `otel_traces` table, plus
`RunId` and `RecordType` (`start` | `end`). Attributes are MAP(VARCHAR, VARCHAR): strings as they
are, booleans as `true`/`false`, numbers in decimal, arrays and maps as JSON, as the ClickHouse
exporter's `AsString()` writes them. `Events` and `Links` are lists of structs whose fields carry
ClickHouse's Nested sub-column names (`Events.Timestamp` there is `Events[i].Timestamp` here).

Log columns follow the exporter's `otel_logs` table (as the span schema, without the schema URLs
and scope attributes), plus `ObservedTimestamp` (`Timestamp` is the record's time, else its
observed time, as the exporter writes it) and `RunId`.

Sample (metric data point) columns are one table for every metric type: the columns the exporter's
five `otel_metrics_*` tables share (gauge: `TimeUnix`, `StartTimeUnix`, `MetricName`, `Value`,
...), plus each type's own (`AggregationTemporality` and `IsMonotonic` of a sum, `Count`, `Sum`,
`Min`, `Max` and buckets of the histograms, `ValueAtQuantiles` of a summary), null where a type
has none, plus `MetricType` (`Gauge`, `Sum`, `Histogram`, `ExponentialHistogram`, `Summary`, as
the exporter names its tables) and `RunId`. One table rather than five: a run's metrics are few
next to its spans, and one part per run and seal keeps the store's file count down. Exemplars are
not kept. GPU samples (`hw.gpu.*` gauges) are rows of the same table.
"""

from __future__ import annotations

import pyarrow as pa

from .layout import LOGS, SAMPLES, SPANS

ATTRIBUTES = pa.map_(pa.string(), pa.string())
TIMESTAMP = pa.timestamp("ns", tz="UTC")

EVENT = pa.struct([("Timestamp", TIMESTAMP), ("Name", pa.string()), ("Attributes", ATTRIBUTES)])
LINK = pa.struct(
    [
        ("TraceId", pa.string()),
        ("SpanId", pa.string()),
        ("TraceState", pa.string()),
        ("Attributes", ATTRIBUTES),
    ]
)

SPAN_SCHEMA = pa.schema(
    [
        ("Timestamp", TIMESTAMP),
        ("TraceId", pa.string()),
        ("SpanId", pa.string()),
        ("ParentSpanId", pa.string()),
        ("TraceState", pa.string()),
        ("SpanName", pa.string()),
        ("SpanKind", pa.string()),
        ("ServiceName", pa.string()),
        ("ResourceAttributes", ATTRIBUTES),
        ("ScopeName", pa.string()),
        ("ScopeVersion", pa.string()),
        ("SpanAttributes", ATTRIBUTES),
        ("Duration", pa.int64()),
        ("StatusCode", pa.string()),
        ("StatusMessage", pa.string()),
        ("Events", pa.list_(EVENT)),
        ("Links", pa.list_(LINK)),
        ("RunId", pa.string()),
        ("RecordType", pa.string()),
    ]
)
"""One row per span record. `Duration` (ns) is null on `start` records."""

LOG_SCHEMA = pa.schema(
    [
        ("Timestamp", TIMESTAMP),
        ("ObservedTimestamp", TIMESTAMP),
        ("TraceId", pa.string()),
        ("SpanId", pa.string()),
        ("TraceFlags", pa.uint8()),
        ("SeverityText", pa.string()),
        ("SeverityNumber", pa.int32()),
        ("ServiceName", pa.string()),
        ("Body", pa.string()),
        ("ResourceAttributes", ATTRIBUTES),
        ("ScopeName", pa.string()),
        ("ScopeVersion", pa.string()),
        ("LogAttributes", ATTRIBUTES),
        ("EventName", pa.string()),
        ("RunId", pa.string()),
    ]
)
"""One row per OTLP log record. `Body` is the body's AnyValue as a string (maps and arrays as
JSON, as attributes are); `TraceId` and `SpanId` are empty when the record names no span."""

QUANTILE = pa.struct([("Quantile", pa.float64()), ("Value", pa.float64())])

SAMPLE_SCHEMA = pa.schema(
    [
        ("TimeUnix", TIMESTAMP),
        ("RunId", pa.string()),
        ("ServiceName", pa.string()),
        ("ResourceAttributes", ATTRIBUTES),
        ("MetricName", pa.string()),
        ("Attributes", ATTRIBUTES),
        ("Value", pa.float64()),
        ("StartTimeUnix", TIMESTAMP),
        ("MetricType", pa.string()),
        ("MetricDescription", pa.string()),
        ("MetricUnit", pa.string()),
        ("ScopeName", pa.string()),
        ("ScopeVersion", pa.string()),
        ("Flags", pa.uint32()),
        ("AggregationTemporality", pa.int32()),
        ("IsMonotonic", pa.bool_()),
        ("Count", pa.uint64()),
        ("Sum", pa.float64()),
        ("Min", pa.float64()),
        ("Max", pa.float64()),
        ("BucketCounts", pa.list_(pa.uint64())),
        ("ExplicitBounds", pa.list_(pa.float64())),
        ("Scale", pa.int32()),
        ("ZeroCount", pa.uint64()),
        ("PositiveOffset", pa.int32()),
        ("PositiveBucketCounts", pa.list_(pa.uint64())),
        ("NegativeOffset", pa.int32()),
        ("NegativeBucketCounts", pa.list_(pa.uint64())),
        ("ValueAtQuantiles", pa.list_(QUANTILE)),
    ]
)
"""One row per metric data point (e.g. `hw.gpu.utilization` with `hw.id`). The first seven
columns are the gauge's; the others are null where the metric type has no such field (a row
written with the first seven only, by an earlier version, reads as a gauge point)."""

KIND_SCHEMAS = {SPANS: SPAN_SCHEMA, LOGS: LOG_SCHEMA, SAMPLES: SAMPLE_SCHEMA}
"""The schema of each kind of record (`layout.KINDS`)."""

START = "start"
END = "end"
