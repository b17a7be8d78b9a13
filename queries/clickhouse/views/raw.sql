-- ClickHouse: the raw records of the runs asked for, in the store's column names and types
-- (queries/views/raw.sql), from two sources:
--   agenttrace_spans/_logs/_samples: runs pushed by agenttrace (`agenttrace push`), the newest push
--     of each; `_Origin` as the supervisor's manifest said.
--   otel_traces, otel_logs, otel_metrics_*: what a collector's (or Rotel's) `clickhouse` exporter
--     wrote, for runs never pushed; `_Origin` NULL, as for a run `agenttrace serve` received. A
--     record's run is its `agenttrace.run.id` attribute, else its resource's, else its trace id.
-- The exporter's maps are `Map(LowCardinality(String), String)`, where a missing key reads '' (and
-- DuckDB's NULL): each is cast to `Map(String, Nullable(String))` here, once, so that a missing key
-- reads NULL in every view and gate.
-- Parameters: {all_runs:Bool} (every run) or {runs:Array(String)}.
CREATE OR REPLACE VIEW _pushes AS
SELECT RunId, max(PushedAt) AS PushedAt, argMax(Supervised, PushedAt) AS Supervised
FROM agenttrace_runs
WHERE {all_runs:Bool} OR has({runs:Array(String)}, RunId)
GROUP BY RunId;

CREATE OR REPLACE VIEW raw_spans AS
SELECT
    s.Timestamp AS Timestamp, s.TraceId AS TraceId, s.SpanId AS SpanId, s.ParentSpanId AS ParentSpanId,
    s.TraceState AS TraceState, s.SpanName AS SpanName, s.SpanKind AS SpanKind, s.ServiceName AS ServiceName,
    s.ResourceAttributes AS ResourceAttributes, s.ScopeName AS ScopeName, s.ScopeVersion AS ScopeVersion,
    s.SpanAttributes AS SpanAttributes, s.Duration AS Duration, s.StatusCode AS StatusCode,
    s.StatusMessage AS StatusMessage, s.Events AS Events, s.Links AS Links, s.RunId AS RunId,
    s.RecordType AS RecordType, s.Origin AS _Origin
FROM agenttrace_spans AS s
INNER JOIN _pushes AS p ON s.RunId = p.RunId AND s.PushedAt = p.PushedAt
UNION ALL
SELECT
    CAST(Timestamp, 'DateTime64(9, \'UTC\')') AS Timestamp,
    CAST(TraceId, 'Nullable(String)') AS TraceId,
    CAST(SpanId, 'Nullable(String)') AS SpanId,
    CAST(ParentSpanId, 'Nullable(String)') AS ParentSpanId,
    CAST(TraceState, 'Nullable(String)') AS TraceState,
    CAST(SpanName, 'Nullable(String)') AS SpanName,
    CAST(SpanKind, 'Nullable(String)') AS SpanKind,
    CAST(ServiceName, 'Nullable(String)') AS ServiceName,
    CAST(ResourceAttributes, 'Map(String, Nullable(String))') AS ResourceAttributes,
    CAST(ScopeName, 'Nullable(String)') AS ScopeName,
    CAST(ScopeVersion, 'Nullable(String)') AS ScopeVersion,
    CAST(SpanAttributes, 'Map(String, Nullable(String))') AS SpanAttributes,
    CAST(Duration, 'Nullable(Int64)') AS Duration,
    CAST(StatusCode, 'Nullable(String)') AS StatusCode,
    CAST(StatusMessage, 'Nullable(String)') AS StatusMessage,
    CAST(
        arrayMap((t, n, a) -> (t, n, a), `Events.Timestamp`, `Events.Name`, `Events.Attributes`),
        'Array(Tuple(Timestamp Nullable(DateTime64(9, \'UTC\')), Name Nullable(String), Attributes Map(String, Nullable(String))))'
    ) AS Events,
    CAST(
        arrayMap((t, s, ts, a) -> (t, s, ts, a), `Links.TraceId`, `Links.SpanId`, `Links.TraceState`, `Links.Attributes`),
        'Array(Tuple(TraceId Nullable(String), SpanId Nullable(String), TraceState Nullable(String), Attributes Map(String, Nullable(String))))'
    ) AS Links,
    coalesce(nullif(SpanAttributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), TraceId) AS RunId,
    CAST('end', 'Nullable(String)') AS RecordType,
    CAST(NULL, 'Nullable(String)') AS _Origin
FROM otel_traces
WHERE RunId NOT IN (SELECT RunId FROM agenttrace_runs)
  AND ({all_runs:Bool} OR has({runs:Array(String)}, RunId));

CREATE OR REPLACE VIEW raw_logs AS
SELECT
    l.Timestamp AS Timestamp, l.ObservedTimestamp AS ObservedTimestamp, l.TraceId AS TraceId, l.SpanId AS SpanId,
    l.TraceFlags AS TraceFlags, l.SeverityText AS SeverityText, l.SeverityNumber AS SeverityNumber,
    l.ServiceName AS ServiceName, l.Body AS Body, l.ResourceAttributes AS ResourceAttributes,
    l.ScopeName AS ScopeName, l.ScopeVersion AS ScopeVersion, l.LogAttributes AS LogAttributes,
    l.EventName AS EventName, l.RunId AS RunId, l.Origin AS _Origin
FROM agenttrace_logs AS l
INNER JOIN _pushes AS p ON l.RunId = p.RunId AND l.PushedAt = p.PushedAt
UNION ALL
SELECT
    CAST(Timestamp, 'DateTime64(9, \'UTC\')') AS Timestamp,
    CAST(NULL, 'Nullable(DateTime64(9, \'UTC\'))') AS ObservedTimestamp,
    CAST(TraceId, 'Nullable(String)') AS TraceId,
    CAST(SpanId, 'Nullable(String)') AS SpanId,
    CAST(TraceFlags, 'Nullable(UInt8)') AS TraceFlags,
    CAST(SeverityText, 'Nullable(String)') AS SeverityText,
    CAST(SeverityNumber, 'Nullable(Int32)') AS SeverityNumber,
    CAST(ServiceName, 'Nullable(String)') AS ServiceName,
    CAST(Body, 'Nullable(String)') AS Body,
    CAST(ResourceAttributes, 'Map(String, Nullable(String))') AS ResourceAttributes,
    CAST(ScopeName, 'Nullable(String)') AS ScopeName,
    CAST(ScopeVersion, 'Nullable(String)') AS ScopeVersion,
    CAST(LogAttributes, 'Map(String, Nullable(String))') AS LogAttributes,
    CAST(NULL, 'Nullable(String)') AS EventName,
    coalesce(nullif(LogAttributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), TraceId) AS RunId,
    CAST(NULL, 'Nullable(String)') AS _Origin
FROM otel_logs
WHERE RunId NOT IN (SELECT RunId FROM agenttrace_runs)
  AND ({all_runs:Bool} OR has({runs:Array(String)}, RunId));

CREATE OR REPLACE VIEW raw_samples AS
SELECT
    m.TimeUnix AS TimeUnix, m.RunId AS RunId, m.ServiceName AS ServiceName, m.ResourceAttributes AS ResourceAttributes, m.MetricName AS MetricName, m.Attributes AS Attributes, m.Value AS Value, m.StartTimeUnix AS StartTimeUnix, m.MetricType AS MetricType, m.MetricDescription AS MetricDescription, m.MetricUnit AS MetricUnit, m.ScopeName AS ScopeName, m.ScopeVersion AS ScopeVersion, m.Flags AS Flags, m.AggregationTemporality AS AggregationTemporality, m.IsMonotonic AS IsMonotonic, m.Count AS Count, m.Sum AS Sum, m.Min AS Min, m.Max AS Max, m.BucketCounts AS BucketCounts, m.ExplicitBounds AS ExplicitBounds, m.Scale AS Scale, m.ZeroCount AS ZeroCount, m.PositiveOffset AS PositiveOffset, m.PositiveBucketCounts AS PositiveBucketCounts, m.NegativeOffset AS NegativeOffset, m.NegativeBucketCounts AS NegativeBucketCounts, m.ValueAtQuantiles AS ValueAtQuantiles, m.Origin AS _Origin
FROM agenttrace_samples AS m
INNER JOIN _pushes AS p ON m.RunId = p.RunId AND m.PushedAt = p.PushedAt
UNION ALL
SELECT
    CAST(TimeUnix, 'DateTime64(9, \'UTC\')') AS TimeUnix,
    coalesce(nullif(Attributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), '') AS RunId,
    CAST(ServiceName, 'Nullable(String)') AS ServiceName,
    CAST(ResourceAttributes, 'Map(String, Nullable(String))') AS ResourceAttributes,
    CAST(MetricName, 'Nullable(String)') AS MetricName,
    CAST(Attributes, 'Map(String, Nullable(String))') AS Attributes,
    CAST(Value, 'Nullable(Float64)') AS Value,
    CAST(StartTimeUnix, 'Nullable(DateTime64(9, \'UTC\'))') AS StartTimeUnix,
    CAST('Gauge', 'Nullable(String)') AS MetricType,
    CAST(MetricDescription, 'Nullable(String)') AS MetricDescription,
    CAST(MetricUnit, 'Nullable(String)') AS MetricUnit,
    CAST(ScopeName, 'Nullable(String)') AS ScopeName,
    CAST(ScopeVersion, 'Nullable(String)') AS ScopeVersion,
    CAST(Flags, 'Nullable(UInt32)') AS Flags,
    CAST(NULL, 'Nullable(Int32)') AS AggregationTemporality,
    CAST(NULL, 'Nullable(Bool)') AS IsMonotonic,
    CAST(NULL, 'Nullable(UInt64)') AS Count,
    CAST(NULL, 'Nullable(Float64)') AS Sum,
    CAST(NULL, 'Nullable(Float64)') AS Min,
    CAST(NULL, 'Nullable(Float64)') AS Max,
    CAST([], 'Array(Nullable(UInt64))') AS BucketCounts,
    CAST([], 'Array(Nullable(Float64))') AS ExplicitBounds,
    CAST(NULL, 'Nullable(Int32)') AS Scale,
    CAST(NULL, 'Nullable(UInt64)') AS ZeroCount,
    CAST(NULL, 'Nullable(Int32)') AS PositiveOffset,
    CAST([], 'Array(Nullable(UInt64))') AS PositiveBucketCounts,
    CAST(NULL, 'Nullable(Int32)') AS NegativeOffset,
    CAST([], 'Array(Nullable(UInt64))') AS NegativeBucketCounts,
    CAST([], 'Array(Tuple(Quantile Nullable(Float64), Value Nullable(Float64)))') AS ValueAtQuantiles,
    CAST(NULL, 'Nullable(String)') AS _Origin
FROM otel_metrics_gauge
WHERE RunId NOT IN (SELECT RunId FROM agenttrace_runs)
  AND ({all_runs:Bool} OR has({runs:Array(String)}, RunId))
UNION ALL
SELECT
    CAST(TimeUnix, 'DateTime64(9, \'UTC\')') AS TimeUnix,
    coalesce(nullif(Attributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), '') AS RunId,
    CAST(ServiceName, 'Nullable(String)') AS ServiceName,
    CAST(ResourceAttributes, 'Map(String, Nullable(String))') AS ResourceAttributes,
    CAST(MetricName, 'Nullable(String)') AS MetricName,
    CAST(Attributes, 'Map(String, Nullable(String))') AS Attributes,
    CAST(Value, 'Nullable(Float64)') AS Value,
    CAST(StartTimeUnix, 'Nullable(DateTime64(9, \'UTC\'))') AS StartTimeUnix,
    CAST('Sum', 'Nullable(String)') AS MetricType,
    CAST(MetricDescription, 'Nullable(String)') AS MetricDescription,
    CAST(MetricUnit, 'Nullable(String)') AS MetricUnit,
    CAST(ScopeName, 'Nullable(String)') AS ScopeName,
    CAST(ScopeVersion, 'Nullable(String)') AS ScopeVersion,
    CAST(Flags, 'Nullable(UInt32)') AS Flags,
    CAST(AggregationTemporality, 'Nullable(Int32)') AS AggregationTemporality,
    CAST(IsMonotonic, 'Nullable(Bool)') AS IsMonotonic,
    CAST(NULL, 'Nullable(UInt64)') AS Count,
    CAST(NULL, 'Nullable(Float64)') AS Sum,
    CAST(NULL, 'Nullable(Float64)') AS Min,
    CAST(NULL, 'Nullable(Float64)') AS Max,
    CAST([], 'Array(Nullable(UInt64))') AS BucketCounts,
    CAST([], 'Array(Nullable(Float64))') AS ExplicitBounds,
    CAST(NULL, 'Nullable(Int32)') AS Scale,
    CAST(NULL, 'Nullable(UInt64)') AS ZeroCount,
    CAST(NULL, 'Nullable(Int32)') AS PositiveOffset,
    CAST([], 'Array(Nullable(UInt64))') AS PositiveBucketCounts,
    CAST(NULL, 'Nullable(Int32)') AS NegativeOffset,
    CAST([], 'Array(Nullable(UInt64))') AS NegativeBucketCounts,
    CAST([], 'Array(Tuple(Quantile Nullable(Float64), Value Nullable(Float64)))') AS ValueAtQuantiles,
    CAST(NULL, 'Nullable(String)') AS _Origin
FROM otel_metrics_sum
WHERE RunId NOT IN (SELECT RunId FROM agenttrace_runs)
  AND ({all_runs:Bool} OR has({runs:Array(String)}, RunId))
UNION ALL
SELECT
    CAST(TimeUnix, 'DateTime64(9, \'UTC\')') AS TimeUnix,
    coalesce(nullif(Attributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), '') AS RunId,
    CAST(ServiceName, 'Nullable(String)') AS ServiceName,
    CAST(ResourceAttributes, 'Map(String, Nullable(String))') AS ResourceAttributes,
    CAST(MetricName, 'Nullable(String)') AS MetricName,
    CAST(Attributes, 'Map(String, Nullable(String))') AS Attributes,
    CAST(NULL, 'Nullable(Float64)') AS Value,
    CAST(StartTimeUnix, 'Nullable(DateTime64(9, \'UTC\'))') AS StartTimeUnix,
    CAST('Histogram', 'Nullable(String)') AS MetricType,
    CAST(MetricDescription, 'Nullable(String)') AS MetricDescription,
    CAST(MetricUnit, 'Nullable(String)') AS MetricUnit,
    CAST(ScopeName, 'Nullable(String)') AS ScopeName,
    CAST(ScopeVersion, 'Nullable(String)') AS ScopeVersion,
    CAST(Flags, 'Nullable(UInt32)') AS Flags,
    CAST(AggregationTemporality, 'Nullable(Int32)') AS AggregationTemporality,
    CAST(NULL, 'Nullable(Bool)') AS IsMonotonic,
    CAST(Count, 'Nullable(UInt64)') AS Count,
    CAST(Sum, 'Nullable(Float64)') AS Sum,
    CAST(Min, 'Nullable(Float64)') AS Min,
    CAST(Max, 'Nullable(Float64)') AS Max,
    CAST(BucketCounts, 'Array(Nullable(UInt64))') AS BucketCounts,
    CAST(ExplicitBounds, 'Array(Nullable(Float64))') AS ExplicitBounds,
    CAST(NULL, 'Nullable(Int32)') AS Scale,
    CAST(NULL, 'Nullable(UInt64)') AS ZeroCount,
    CAST(NULL, 'Nullable(Int32)') AS PositiveOffset,
    CAST([], 'Array(Nullable(UInt64))') AS PositiveBucketCounts,
    CAST(NULL, 'Nullable(Int32)') AS NegativeOffset,
    CAST([], 'Array(Nullable(UInt64))') AS NegativeBucketCounts,
    CAST([], 'Array(Tuple(Quantile Nullable(Float64), Value Nullable(Float64)))') AS ValueAtQuantiles,
    CAST(NULL, 'Nullable(String)') AS _Origin
FROM otel_metrics_histogram
WHERE RunId NOT IN (SELECT RunId FROM agenttrace_runs)
  AND ({all_runs:Bool} OR has({runs:Array(String)}, RunId))
UNION ALL
SELECT
    CAST(TimeUnix, 'DateTime64(9, \'UTC\')') AS TimeUnix,
    coalesce(nullif(Attributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), '') AS RunId,
    CAST(ServiceName, 'Nullable(String)') AS ServiceName,
    CAST(ResourceAttributes, 'Map(String, Nullable(String))') AS ResourceAttributes,
    CAST(MetricName, 'Nullable(String)') AS MetricName,
    CAST(Attributes, 'Map(String, Nullable(String))') AS Attributes,
    CAST(NULL, 'Nullable(Float64)') AS Value,
    CAST(StartTimeUnix, 'Nullable(DateTime64(9, \'UTC\'))') AS StartTimeUnix,
    CAST('ExponentialHistogram', 'Nullable(String)') AS MetricType,
    CAST(MetricDescription, 'Nullable(String)') AS MetricDescription,
    CAST(MetricUnit, 'Nullable(String)') AS MetricUnit,
    CAST(ScopeName, 'Nullable(String)') AS ScopeName,
    CAST(ScopeVersion, 'Nullable(String)') AS ScopeVersion,
    CAST(Flags, 'Nullable(UInt32)') AS Flags,
    CAST(AggregationTemporality, 'Nullable(Int32)') AS AggregationTemporality,
    CAST(NULL, 'Nullable(Bool)') AS IsMonotonic,
    CAST(Count, 'Nullable(UInt64)') AS Count,
    CAST(Sum, 'Nullable(Float64)') AS Sum,
    CAST(Min, 'Nullable(Float64)') AS Min,
    CAST(Max, 'Nullable(Float64)') AS Max,
    CAST([], 'Array(Nullable(UInt64))') AS BucketCounts,
    CAST([], 'Array(Nullable(Float64))') AS ExplicitBounds,
    CAST(Scale, 'Nullable(Int32)') AS Scale,
    CAST(ZeroCount, 'Nullable(UInt64)') AS ZeroCount,
    CAST(PositiveOffset, 'Nullable(Int32)') AS PositiveOffset,
    CAST(PositiveBucketCounts, 'Array(Nullable(UInt64))') AS PositiveBucketCounts,
    CAST(NegativeOffset, 'Nullable(Int32)') AS NegativeOffset,
    CAST(NegativeBucketCounts, 'Array(Nullable(UInt64))') AS NegativeBucketCounts,
    CAST([], 'Array(Tuple(Quantile Nullable(Float64), Value Nullable(Float64)))') AS ValueAtQuantiles,
    CAST(NULL, 'Nullable(String)') AS _Origin
FROM otel_metrics_exponential_histogram
WHERE RunId NOT IN (SELECT RunId FROM agenttrace_runs)
  AND ({all_runs:Bool} OR has({runs:Array(String)}, RunId))
UNION ALL
SELECT
    CAST(TimeUnix, 'DateTime64(9, \'UTC\')') AS TimeUnix,
    coalesce(nullif(Attributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), '') AS RunId,
    CAST(ServiceName, 'Nullable(String)') AS ServiceName,
    CAST(ResourceAttributes, 'Map(String, Nullable(String))') AS ResourceAttributes,
    CAST(MetricName, 'Nullable(String)') AS MetricName,
    CAST(Attributes, 'Map(String, Nullable(String))') AS Attributes,
    CAST(NULL, 'Nullable(Float64)') AS Value,
    CAST(StartTimeUnix, 'Nullable(DateTime64(9, \'UTC\'))') AS StartTimeUnix,
    CAST('Summary', 'Nullable(String)') AS MetricType,
    CAST(MetricDescription, 'Nullable(String)') AS MetricDescription,
    CAST(MetricUnit, 'Nullable(String)') AS MetricUnit,
    CAST(ScopeName, 'Nullable(String)') AS ScopeName,
    CAST(ScopeVersion, 'Nullable(String)') AS ScopeVersion,
    CAST(Flags, 'Nullable(UInt32)') AS Flags,
    CAST(NULL, 'Nullable(Int32)') AS AggregationTemporality,
    CAST(NULL, 'Nullable(Bool)') AS IsMonotonic,
    CAST(Count, 'Nullable(UInt64)') AS Count,
    CAST(Sum, 'Nullable(Float64)') AS Sum,
    CAST(NULL, 'Nullable(Float64)') AS Min,
    CAST(NULL, 'Nullable(Float64)') AS Max,
    CAST([], 'Array(Nullable(UInt64))') AS BucketCounts,
    CAST([], 'Array(Nullable(Float64))') AS ExplicitBounds,
    CAST(NULL, 'Nullable(Int32)') AS Scale,
    CAST(NULL, 'Nullable(UInt64)') AS ZeroCount,
    CAST(NULL, 'Nullable(Int32)') AS PositiveOffset,
    CAST([], 'Array(Nullable(UInt64))') AS PositiveBucketCounts,
    CAST(NULL, 'Nullable(Int32)') AS NegativeOffset,
    CAST([], 'Array(Nullable(UInt64))') AS NegativeBucketCounts,
    CAST(arrayMap((q, v) -> (q, v), `ValueAtQuantiles.Quantile`, `ValueAtQuantiles.Value`), 'Array(Tuple(Quantile Nullable(Float64), Value Nullable(Float64)))') AS ValueAtQuantiles,
    CAST(NULL, 'Nullable(String)') AS _Origin
FROM otel_metrics_summary
WHERE RunId NOT IN (SELECT RunId FROM agenttrace_runs)
  AND ({all_runs:Bool} OR has({runs:Array(String)}, RunId));

-- What the DuckDB views read besides the records: which runs a supervisor vouched for, where their
-- records differed from its manifest, which runs are still being recorded (none: a pushed run is
-- sealed), and live answers for cited URLs (`url_checks`, filled by the engine).
CREATE OR REPLACE VIEW supervised_runs AS
SELECT CAST(RunId, 'Nullable(String)') AS run_id FROM _pushes WHERE Supervised;

CREATE OR REPLACE VIEW integrity_problems AS
SELECT CAST(q.RunId, 'Nullable(String)') AS run_id, CAST(q.Reason, 'Nullable(String)') AS reason, q.Part AS part
FROM agenttrace_problems AS q
INNER JOIN _pushes AS p ON q.RunId = p.RunId AND q.PushedAt = p.PushedAt;

CREATE OR REPLACE VIEW live_runs AS
SELECT CAST(NULL, 'Nullable(String)') AS run_id WHERE 0;
