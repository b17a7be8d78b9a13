"""GPU samples as rows of the store's `SAMPLE_SCHEMA`, and those rows as OTLP metrics.

Names follow the OpenTelemetry hardware conventions (`hw.gpu.*`, `hw.power`, `hw.temperature`,
`hw.errors`; `hw.id` is the device UUID), with their instrument types: utilization, power and
temperature are gauges, memory usage and limit non-monotonic cumulative sums (UpDownCounters), the
ECC error totals a monotonic cumulative sum. What the conventions do not name is under
`agenttrace.gpu.*`: clocks, a process's device memory, and critical events (an Xid, an uncorrected
ECC error) as points at the moment they happened. Every point of one tick has the same time.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import pyarrow as pa

from .. import __version__
from ..constants import RUN_ID
from ..store.schema import ATTRIBUTES, SAMPLE_SCHEMA

SERVICE = "agenttrace"
SCOPE = "agenttrace.gpu"
GAUGE = "Gauge"
SUM = "Sum"
CUMULATIVE = 2
"""OTLP's AGGREGATION_TEMPORALITY_CUMULATIVE."""


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    description: str
    type: str = GAUGE
    monotonic: bool | None = None


UTILIZATION = Metric("hw.gpu.utilization", "1", "Fraction of time one or more kernels ran on the GPU")
MEMORY_USAGE = Metric("hw.gpu.memory.usage", "By", "GPU memory used", SUM, False)
MEMORY_LIMIT = Metric("hw.gpu.memory.limit", "By", "GPU memory in total", SUM, False)
POWER = Metric("hw.power", "W", "GPU power draw")
TEMPERATURE = Metric("hw.temperature", "Cel", "GPU core temperature")
SM_CLOCK = Metric("agenttrace.gpu.clock.sm", "MHz", "GPU SM clock")
MEMORY_CLOCK = Metric("agenttrace.gpu.clock.memory", "MHz", "GPU memory clock")
ERRORS = Metric("hw.errors", "{error}", "GPU ECC errors since the driver loaded (error.type)", SUM, True)
PROCESS_MEMORY = Metric("agenttrace.gpu.process.memory", "By", "GPU memory a process uses")
XID = Metric("agenttrace.gpu.xid", "1", "An Xid critical error on the GPU (the value is the Xid)")
ECC_EVENT = Metric("agenttrace.gpu.ecc", "{error}", "An uncorrected ECC error event on the GPU")

IN_RUN = "agenttrace.gpu.process.in_run"
"""On a process point: `true` if the process belongs to the run's process tree, else `false`."""


class SampleRows:
    """Points collected for one write, then one `pa.Table` of `SAMPLE_SCHEMA`."""

    def __init__(self, run_id: str, start_ns: int) -> None:
        self.run_id = run_id
        self.start_ns = start_ns
        self._resource = [("service.name", SERVICE), (RUN_ID, run_id)]
        self._time: list[int] = []
        self._metric: list[Metric] = []
        self._value: list[float | None] = []
        self._attrs: list[list[tuple[str, str]]] = []

    def __len__(self) -> int:
        return len(self._time)

    def add(
        self, metric: Metric, time_ns: int, value: float | None, attrs: Iterable[tuple[str, str]]
    ) -> None:
        self._time.append(time_ns)
        self._metric.append(metric)
        self._value.append(None if value is None else float(value))
        self._attrs.append(list(attrs))

    def table(self) -> pa.Table:
        n = len(self._time)
        metrics = self._metric
        sums = [m.type == SUM for m in metrics]
        columns: dict[str, Any] = {
            "TimeUnix": pa.array(self._time, pa.int64()).cast(SAMPLE_SCHEMA.field("TimeUnix").type),
            "RunId": pa.array([self.run_id] * n, pa.string()),
            "ServiceName": pa.array([SERVICE] * n, pa.string()),
            "ResourceAttributes": pa.array([self._resource] * n, ATTRIBUTES),
            "MetricName": pa.array([m.name for m in metrics], pa.string()),
            "Attributes": pa.array(self._attrs, ATTRIBUTES),
            "Value": pa.array(self._value, pa.float64()),
            "StartTimeUnix": pa.array([self.start_ns if s else None for s in sums], pa.int64()).cast(
                SAMPLE_SCHEMA.field("StartTimeUnix").type
            ),
            "MetricType": pa.array([m.type for m in metrics], pa.string()),
            "MetricDescription": pa.array([m.description for m in metrics], pa.string()),
            "MetricUnit": pa.array([m.unit for m in metrics], pa.string()),
            "ScopeName": pa.array([SCOPE] * n, pa.string()),
            "ScopeVersion": pa.array([__version__] * n, pa.string()),
            "Flags": pa.array([0] * n, pa.uint32()),
            "AggregationTemporality": pa.array([CUMULATIVE if s else None for s in sums], pa.int32()),
            "IsMonotonic": pa.array([m.monotonic for m in metrics], pa.bool_()),
        }
        return pa.Table.from_arrays(
            [columns[f.name] if f.name in columns else pa.nulls(n, f.type) for f in SAMPLE_SCHEMA],
            schema=SAMPLE_SCHEMA,
        )


def to_otlp(table: pa.Table) -> bytes:
    """Gauge and sum rows of `SAMPLE_SCHEMA` (the sampler's, or any) as one OTLP/protobuf
    `ExportMetricsServiceRequest`, for a backend (`otlp.forward.Forwarder.submit(body,
    "application/x-protobuf", signal="metrics")`): one resource per distinct resource attribute set,
    one scope per scope, one metric per name and type, its points with their attributes. Rows of
    other metric types (histograms, summaries) are left out."""
    from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import ExportMetricsServiceRequest

    request = ExportMetricsServiceRequest()
    resources: dict[tuple[tuple[str, str], ...], Any] = {}
    scopes: dict[tuple[Any, ...], Any] = {}
    metrics: dict[tuple[Any, ...], Any] = {}
    # Times as integers, never through Python datetimes (microseconds only).
    times = table.column("TimeUnix").cast(pa.int64()).to_pylist()
    starts = table.column("StartTimeUnix").cast(pa.int64()).to_pylist()
    rows = table.select(
        [
            "ServiceName",
            "ResourceAttributes",
            "MetricName",
            "Attributes",
            "Value",
            "MetricType",
            "MetricDescription",
            "MetricUnit",
            "ScopeName",
            "ScopeVersion",
            "Flags",
            "AggregationTemporality",
            "IsMonotonic",
        ]
    ).to_pylist()
    for row, time_ns, start_ns in zip(rows, times, starts, strict=True):
        kind = row["MetricType"] or GAUGE
        if kind not in (GAUGE, SUM):
            continue
        resource_attrs = tuple(row["ResourceAttributes"] or ())
        if not any(k == "service.name" for k, _ in resource_attrs) and row["ServiceName"]:
            resource_attrs = (("service.name", row["ServiceName"]), *resource_attrs)
        resource = resources.get(resource_attrs)
        if resource is None:
            resource = request.resource_metrics.add()
            for key, value in resource_attrs:
                attr = resource.resource.attributes.add()
                attr.key, attr.value.string_value = key, value
            resources[resource_attrs] = resource
        scope_key = (resource_attrs, row["ScopeName"] or "", row["ScopeVersion"] or "")
        scope = scopes.get(scope_key)
        if scope is None:
            scope = resource.scope_metrics.add()
            scope.scope.name, scope.scope.version = scope_key[1], scope_key[2]
            scopes[scope_key] = scope
        metric_key = (
            scope_key,
            row["MetricName"],
            kind,
            row["MetricUnit"] or "",
            row["MetricDescription"] or "",
            row["AggregationTemporality"],
            row["IsMonotonic"],
        )
        metric = metrics.get(metric_key)
        if metric is None:
            metric = scope.metrics.add()
            metric.name, metric.unit, metric.description = metric_key[1], metric_key[3], metric_key[4]
            if kind == SUM:
                metric.sum.aggregation_temporality = row["AggregationTemporality"] or CUMULATIVE
                metric.sum.is_monotonic = bool(row["IsMonotonic"])
            else:
                metric.gauge.SetInParent()
            metrics[metric_key] = metric
        point = (metric.sum if kind == SUM else metric.gauge).data_points.add()
        point.time_unix_nano = time_ns or 0
        if start_ns:
            point.start_time_unix_nano = start_ns
        if row["Value"] is not None:
            point.as_double = row["Value"]
        if row["Flags"]:
            point.flags = row["Flags"]
        for key, value in row["Attributes"] or ():
            attr = point.attributes.add()
            attr.key, attr.value.string_value = key, value
    return request.SerializeToString()


__all__ = [
    "ECC_EVENT",
    "ERRORS",
    "IN_RUN",
    "MEMORY_CLOCK",
    "MEMORY_LIMIT",
    "MEMORY_USAGE",
    "POWER",
    "PROCESS_MEMORY",
    "SM_CLOCK",
    "TEMPERATURE",
    "UTILIZATION",
    "XID",
    "Metric",
    "SampleRows",
    "to_otlp",
]
