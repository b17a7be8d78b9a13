-- GPU samples: one row per device (pid NULL) and one per process on a device, per sample time,
-- pivoted from the sampler's points in `metrics` (OTel hardware conventions: `hw.id` is the device
-- UUID, `hw.gpu.index` its NVML index). A device row has the device's readings (utilization as a
-- fraction 0..1, memory in bytes, power in W, temperature in degrees C, clocks in MHz, ECC error
-- totals since the driver loaded); a process row has the process's device memory, its command
-- line, parent pid and start time (from /proc when sampled), and `in_run`: whether it belonged to
-- the run's process tree (the supervisor's answer; NULL when not known). `origin`: as in `spans`
-- (`supervisor` for what `agenttrace run` sampled; the agent can send `hw.gpu.*` metrics of its
-- own, which are `agent` rows and prove nothing). Critical events are in `gpu_events`.
CREATE OR REPLACE VIEW gpu_samples AS
SELECT
    run_id,
    time,
    TRY_CAST(attributes['hw.gpu.index'] AS INTEGER) AS device,
    attributes['hw.id'] AS uuid,
    max(value) FILTER (WHERE name = 'hw.gpu.utilization') AS utilization,
    CAST(max(value) FILTER (WHERE name = 'hw.gpu.memory.usage') AS BIGINT) AS memory_used,
    CAST(max(value) FILTER (WHERE name = 'hw.gpu.memory.limit') AS BIGINT) AS memory_total,
    max(value) FILTER (WHERE name = 'hw.power') AS power_w,
    TRY_CAST(attributes['process.pid'] AS BIGINT) AS pid,
    CAST(max(value) FILTER (WHERE name = 'agenttrace.gpu.process.memory') AS BIGINT) AS process_memory,
    max(value) FILTER (WHERE name = 'hw.temperature') AS temperature_c,
    CAST(max(value) FILTER (WHERE name = 'agenttrace.gpu.clock.sm') AS INTEGER) AS sm_clock_mhz,
    CAST(max(value) FILTER (WHERE name = 'agenttrace.gpu.clock.memory') AS INTEGER) AS memory_clock_mhz,
    CAST(max(value) FILTER (WHERE name = 'hw.errors' AND attributes['error.type'] = 'uncorrected') AS BIGINT)
        AS ecc_uncorrected,
    CAST(max(value) FILTER (WHERE name = 'hw.errors' AND attributes['error.type'] = 'corrected') AS BIGINT)
        AS ecc_corrected,
    any_value(attributes['hw.name']) AS device_name,
    any_value(attributes['process.command_line']) FILTER (WHERE name = 'agenttrace.gpu.process.memory')
        AS command_line,
    TRY_CAST(any_value(attributes['process.parent_pid']) FILTER (WHERE name = 'agenttrace.gpu.process.memory')
        AS BIGINT) AS parent_pid,
    TRY_CAST(any_value(attributes['process.creation.time']) FILTER (WHERE name = 'agenttrace.gpu.process.memory')
        AS TIMESTAMPTZ) AS process_start_time,
    TRY_CAST(any_value(attributes['agenttrace.gpu.process.in_run'])
        FILTER (WHERE name = 'agenttrace.gpu.process.memory') AS BOOLEAN) AS in_run,
    origin
FROM metrics
WHERE name IN (
        'hw.gpu.utilization', 'hw.gpu.memory.usage', 'hw.gpu.memory.limit', 'agenttrace.gpu.process.memory',
        'agenttrace.gpu.clock.sm', 'agenttrace.gpu.clock.memory'
    )
    OR (name IN ('hw.power', 'hw.temperature', 'hw.errors') AND attributes['hw.type'] = 'gpu')
GROUP BY run_id, time, device, uuid, pid, origin;

-- Critical GPU events: an Xid (`kind` 'xid', `xid` its code) or uncorrected ECC errors (`kind`
-- 'ecc_uncorrected'), as NVML's event API reported them (`source` 'event', `errors` 1) or as the
-- device's uncorrected-error total rose between two samples of the run (`source` 'counter',
-- `errors` the increase; devices without events support show these only). `origin`: as in
-- `gpu_samples`.
CREATE OR REPLACE VIEW gpu_events AS
SELECT
    run_id,
    time,
    TRY_CAST(attributes['hw.gpu.index'] AS INTEGER) AS device,
    attributes['hw.id'] AS uuid,
    CASE name WHEN 'agenttrace.gpu.xid' THEN 'xid' ELSE 'ecc_uncorrected' END AS kind,
    CASE name WHEN 'agenttrace.gpu.xid' THEN CAST(value AS INTEGER) END AS xid,
    CAST(CASE name WHEN 'agenttrace.gpu.xid' THEN 1 ELSE coalesce(value, 1) END AS BIGINT) AS errors,
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
