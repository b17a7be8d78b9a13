-- One row per metric data point: OTLP metrics from `agenttrace serve` or `agenttrace run`'s
-- receiver, and agenttrace's own samples (GPU). Times are UTC; `start_time` is NULL when unset
-- (gauges). `kind`: gauge, sum, histogram, exponential_histogram or summary. `value` is a gauge's or
-- a sum's value (integers as DOUBLE); `count`, `sum`, `min`, `max` are a histogram's or a summary's
-- (`min`/`max` NULL when not sent), with `bucket_counts` and `explicit_bounds` (histogram),
-- `scale`, `zero_count`, `positive_*` / `negative_*` (exponential histogram) and `quantiles`
-- (summary: list of {Quantile, Value}). `temporality`: delta or cumulative (sums and histograms),
-- `is_monotonic` (sums). `origin`: as in `spans`. A point read twice (from the spool and from the
-- part it was sealed into meanwhile) is one row.
CREATE OR REPLACE VIEW metrics AS
SELECT DISTINCT ON (RunId, MetricName, MetricType, TimeUnix, StartTimeUnix, hash(Attributes), hash(ResourceAttributes), Value, Count, Sum, hash(ValueAtQuantiles), hash(BucketCounts), hash(PositiveBucketCounts))
    RunId AS run_id,
    TimeUnix AS time,
    StartTimeUnix AS start_time,
    MetricName AS name,
    MetricDescription AS description,
    MetricUnit AS unit,
    CASE coalesce(MetricType, 'Gauge')
        WHEN 'Gauge' THEN 'gauge'
        WHEN 'Sum' THEN 'sum'
        WHEN 'Histogram' THEN 'histogram'
        WHEN 'ExponentialHistogram' THEN 'exponential_histogram'
        WHEN 'Summary' THEN 'summary'
    END AS kind,
    Value AS value,
    Count AS count,
    Sum AS sum,
    Min AS min,
    Max AS max,
    BucketCounts AS bucket_counts,
    ExplicitBounds AS explicit_bounds,
    Scale AS scale,
    ZeroCount AS zero_count,
    PositiveOffset AS positive_offset,
    PositiveBucketCounts AS positive_bucket_counts,
    NegativeOffset AS negative_offset,
    NegativeBucketCounts AS negative_bucket_counts,
    ValueAtQuantiles AS quantiles,
    Attributes AS attributes,
    ResourceAttributes AS resource_attributes,
    ServiceName AS service_name,
    ScopeName AS scope_name,
    CASE AggregationTemporality WHEN 1 THEN 'delta' WHEN 2 THEN 'cumulative' END AS temporality,
    IsMonotonic AS is_monotonic,
    Flags AS flags,
    _Origin AS origin
FROM raw_samples;
