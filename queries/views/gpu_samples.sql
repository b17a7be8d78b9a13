-- GPU samples: one row per device (pid NULL) or per process on a device, per sample time, pivoted
-- from `hw.gpu.*` gauge points (OTel hardware conventions; `hw.id` is the device UUID).
CREATE OR REPLACE VIEW gpu_samples AS
SELECT
    RunId AS run_id,
    TimeUnix AS time,
    TRY_CAST(Attributes['hw.gpu.index'] AS INTEGER) AS device,
    Attributes['hw.id'] AS uuid,
    max(Value) FILTER (WHERE MetricName = 'hw.gpu.utilization') AS utilization,
    CAST(max(Value) FILTER (WHERE MetricName = 'hw.gpu.memory.usage') AS BIGINT) AS memory_used,
    CAST(max(Value) FILTER (WHERE MetricName = 'hw.gpu.memory.limit') AS BIGINT) AS memory_total,
    max(Value) FILTER (WHERE MetricName = 'hw.power') AS power_w,
    TRY_CAST(Attributes['process.pid'] AS BIGINT) AS pid,
    CAST(max(Value) FILTER (WHERE MetricName = 'agenttrace.gpu.process.memory') AS BIGINT) AS process_memory
FROM raw_samples
WHERE MetricName LIKE 'hw.%' OR MetricName LIKE 'agenttrace.gpu.%'
GROUP BY ALL;
