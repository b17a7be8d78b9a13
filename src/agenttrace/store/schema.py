"""The Arrow schemas of stored records: one place.

Span columns follow the OpenTelemetry Collector ClickHouse exporter's `otel_traces` table, plus
`RunId` and `RecordType` (`start` | `end`). Attributes are MAP(VARCHAR, VARCHAR): strings as they
are, booleans as `true`/`false`, numbers in decimal, arrays and maps as JSON, as the ClickHouse
exporter's `AsString()` writes them. `Events` and `Links` are lists of structs whose fields carry
ClickHouse's Nested sub-column names (`Events.Timestamp` there is `Events[i].Timestamp` here).
Sample columns follow the exporter's `otel_metrics_gauge` table, plus `RunId`.
"""

from __future__ import annotations

import pyarrow as pa

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

SAMPLE_SCHEMA = pa.schema(
    [
        ("TimeUnix", TIMESTAMP),
        ("RunId", pa.string()),
        ("ServiceName", pa.string()),
        ("ResourceAttributes", ATTRIBUTES),
        ("MetricName", pa.string()),
        ("Attributes", ATTRIBUTES),
        ("Value", pa.float64()),
    ]
)
"""One row per gauge data point (e.g. `hw.gpu.utilization` with `hw.id`)."""

START = "start"
END = "end"
