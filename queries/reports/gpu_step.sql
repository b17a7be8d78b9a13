-- `agenttrace step RUN N`: the GPUs during step $step, from `agenttrace run`'s NVML samples taken
-- between the step's start and its end (an unfinished step: to the last sample): one row per
-- device the run leased or a process of the run used during the step, with the number of samples
-- and the device's utilization (fraction 0..1: min, avg, max) and memory used (max) over them.
WITH this AS (
    SELECT
        start_time,
        coalesce(end_time, (SELECT max(time) FROM gpu_samples WHERE run_id = $run_id)) AS end_time
    FROM steps
    WHERE run_id = $run_id AND step = $step
),
leased AS (
    SELECT DISTINCT unnest(TRY_CAST(json(attributes['agenttrace.gpu.lease.devices']) AS VARCHAR[])) AS uuid
    FROM spans
    WHERE run_id = $run_id AND attributes['agenttrace.span.type'] = 'gpu_lease' AND origin IS DISTINCT FROM 'agent'
),
during AS (
    SELECT s.*
    FROM gpu_samples s, this
    WHERE s.run_id = $run_id AND s.origin IS DISTINCT FROM 'agent'
      AND s.time BETWEEN this.start_time AND this.end_time
),
devices AS (
    SELECT uuid FROM leased
    UNION
    SELECT uuid FROM during WHERE pid IS NOT NULL AND in_run
),
known AS (  -- every device as the run's samples name it, for one with no sample during the step
    SELECT uuid, any_value(device) AS device, any_value(device_name) AS name, max(memory_total) AS memory_total
    FROM gpu_samples
    WHERE run_id = $run_id AND pid IS NULL AND origin IS DISTINCT FROM 'agent'
    GROUP BY uuid
)
SELECT
    k.device,
    d.uuid,
    k.name,
    d.uuid IN (SELECT uuid FROM leased) AS leased,
    count(s.time) AS samples,
    min(s.utilization) AS utilization_min,
    round(avg(s.utilization), 4) AS utilization_avg,
    max(s.utilization) AS utilization_max,
    max(s.memory_used) AS memory_used_max,
    k.memory_total
FROM devices d
LEFT JOIN known k ON k.uuid = d.uuid
LEFT JOIN during s ON s.uuid = d.uuid AND s.pid IS NULL
GROUP BY ALL
ORDER BY k.device NULLS LAST, d.uuid;
