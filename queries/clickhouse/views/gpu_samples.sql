-- ClickHouse variant of queries/views/gpu_samples.sql (same meaning, same columns): a variant because
-- DuckDB's casts mean something else here: TRY_CAST(text AS TIMESTAMPTZ) keeps the microseconds
-- (parseDateTime64BestEffortOrNull), TRY_CAST(text AS BOOLEAN) gives NULL for other text (ClickHouse's
-- CAST throws), and CAST(DOUBLE AS BIGINT/INTEGER) rounds half to even (ClickHouse's truncates:
-- round() first, which breaks ties to even on Float64 as DuckDB does).
CREATE OR REPLACE VIEW gpu_samples AS
SELECT
    run_id,
    time,
    CAST(attributes['hw.gpu.index'], 'Nullable(Int32)') AS device,
    attributes['hw.id'] AS uuid,
    maxIf(value, name = 'hw.gpu.utilization') AS utilization,
    CAST(round(maxIf(value, name = 'hw.gpu.memory.usage')), 'Nullable(Int64)') AS memory_used,
    CAST(round(maxIf(value, name = 'hw.gpu.memory.limit')), 'Nullable(Int64)') AS memory_total,
    maxIf(value, name = 'hw.power') AS power_w,
    CAST(attributes['process.pid'], 'Nullable(Int64)') AS pid,
    CAST(round(maxIf(value, name = 'agenttrace.gpu.process.memory')), 'Nullable(Int64)') AS process_memory,
    maxIf(value, name = 'hw.temperature') AS temperature_c,
    CAST(round(maxIf(value, name = 'agenttrace.gpu.clock.sm')), 'Nullable(Int32)') AS sm_clock_mhz,
    CAST(round(maxIf(value, name = 'agenttrace.gpu.clock.memory')), 'Nullable(Int32)') AS memory_clock_mhz,
    CAST(round(maxIf(value, name = 'hw.errors' AND attributes['error.type'] = 'uncorrected')), 'Nullable(Int64)')
        AS ecc_uncorrected,
    CAST(round(maxIf(value, name = 'hw.errors' AND attributes['error.type'] = 'corrected')), 'Nullable(Int64)')
        AS ecc_corrected,
    any(attributes['hw.name']) AS device_name,
    anyIf(attributes['process.command_line'], name = 'agenttrace.gpu.process.memory') AS command_line,
    CAST(anyIf(attributes['process.parent_pid'], name = 'agenttrace.gpu.process.memory'), 'Nullable(Int64)')
        AS parent_pid,
    parseDateTime64BestEffortOrNull(
        anyIf(attributes['process.creation.time'], name = 'agenttrace.gpu.process.memory'), 6, 'UTC')
        AS process_start_time,
    multiIf(
        lower(anyIf(attributes['agenttrace.gpu.process.in_run'], name = 'agenttrace.gpu.process.memory'))
            IN ('true', 't', 'yes', 'y', '1'), true,
        lower(anyIf(attributes['agenttrace.gpu.process.in_run'], name = 'agenttrace.gpu.process.memory'))
            IN ('false', 'f', 'no', 'n', '0'), false,
        NULL) AS in_run,
    origin
FROM metrics
WHERE name IN (
        'hw.gpu.utilization', 'hw.gpu.memory.usage', 'hw.gpu.memory.limit', 'agenttrace.gpu.process.memory',
        'agenttrace.gpu.clock.sm', 'agenttrace.gpu.clock.memory'
    )
    OR (name IN ('hw.power', 'hw.temperature', 'hw.errors') AND attributes['hw.type'] = 'gpu')
GROUP BY run_id, time, device, uuid, pid, origin;

-- Critical GPU events: see queries/views/gpu_samples.sql.
CREATE OR REPLACE VIEW gpu_events AS
SELECT
    run_id,
    time,
    CAST(attributes['hw.gpu.index'], 'Nullable(Int32)') AS device,
    attributes['hw.id'] AS uuid,
    CASE name WHEN 'agenttrace.gpu.xid' THEN 'xid' ELSE 'ecc_uncorrected' END AS kind,
    CASE name WHEN 'agenttrace.gpu.xid' THEN CAST(round(value), 'Nullable(Int32)') END AS xid,
    CAST(round(CASE name WHEN 'agenttrace.gpu.xid' THEN 1 ELSE coalesce(value, 1) END), 'Nullable(Int64)') AS errors,
    'event' AS source,
    origin
FROM metrics
WHERE name IN ('agenttrace.gpu.xid', 'agenttrace.gpu.ecc')
UNION ALL
SELECT run_id, time, device, uuid, 'ecc_uncorrected', NULL, ecc_uncorrected - previous, 'counter', origin
FROM (
    SELECT
        run_id, time, device, uuid, ecc_uncorrected, origin,
        lag(ecc_uncorrected) OVER (PARTITION BY run_id, uuid, origin ORDER BY time) AS previous
    FROM gpu_samples
    WHERE pid IS NULL AND ecc_uncorrected IS NOT NULL
)
WHERE ecc_uncorrected > previous;
