-- ClickHouse variant of queries/reports/gpu_step.sql (same meaning, same columns): DuckDB's
-- `unnest(TRY_CAST(json(x) AS VARCHAR[]))` is arrayJoin over JSONExtractArrayRaw (each element read
-- as DuckDB does: a string unquoted, a JSON null NULL, anything else its JSON text); DuckDB's
-- round() (the exact value, half away from zero) is spelled out (ClickHouse's is not that).
-- `agenttrace step RUN N`: the GPUs during step $step, from `agenttrace run`'s NVML samples taken
-- between the step's start and its end (an unfinished step: to the last sample): one row per
-- device the run leased or a process of the run used during the step, with the number of samples
-- and the device's utilization (fraction 0..1: min, avg, max) and memory used (max) over them.
WITH this AS (
    SELECT
        start_time,
        coalesce(end_time, (SELECT max(time) FROM gpu_samples WHERE run_id = {run_id:String})) AS end_time
    FROM steps
    WHERE run_id = {run_id:String} AND step = {step:Int64}
),
leased AS (
    SELECT DISTINCT arrayJoin(arrayMap(j -> multiIf(JSONType(j) = 'Null', NULL, JSONType(j) = 'String', JSONExtractString(j), j),
                                       JSONExtractArrayRaw(coalesce(attributes['agenttrace.gpu.lease.devices'], '')))) AS uuid
    FROM spans
    WHERE run_id = {run_id:String} AND attributes['agenttrace.span.type'] = 'gpu_lease' AND origin IS DISTINCT FROM 'agent'
),
during AS (
    SELECT s.*
    FROM gpu_samples AS s, this
    WHERE s.run_id = {run_id:String} AND s.origin IS DISTINCT FROM 'agent'
      AND s.time BETWEEN this.start_time AND this.end_time
),
devices AS (
    SELECT uuid FROM leased
    UNION DISTINCT
    SELECT uuid FROM during WHERE pid IS NOT NULL AND in_run
),
known AS (  -- every device as the run's samples name it, for one with no sample during the step
    SELECT uuid, any(device) AS device, any(device_name) AS name, max(memory_total) AS memory_total
    FROM gpu_samples
    WHERE run_id = {run_id:String} AND pid IS NULL AND origin IS DISTINCT FROM 'agent'
    GROUP BY uuid
)
SELECT
    k.device AS device,
    d.uuid AS uuid,
    k.name AS name,
    toBool(d.uuid IN (SELECT uuid FROM leased)) AS leased,
    count(s.time) AS samples,
    min(s.utilization) AS utilization_min,
    -- round(avg(s.utilization), 4) as DuckDB rounds (the exact value, half away from zero): u * 10^4 in
    -- floating point, and where that is k + 0.5 exactly, the side the exact product is on (Dekker's
    -- error-free product: a split in two halves of at most 27 bits)
    arrayMap((u, a, p) -> if(isFinite(p),
                             sign(u) * (floor(p) + (p - floor(p) > 0.5
                                 OR (p - floor(p) = 0.5
                                     AND ((a * 134217729 - (a * 134217729 - a)) * 10000 - p)
                                         + (a - (a * 134217729 - (a * 134217729 - a))) * 10000 >= 0))) / 10000,
                             u),
             [avg(s.utilization)], [abs(avg(s.utilization))], [abs(avg(s.utilization)) * 10000])[1] AS utilization_avg,
    max(s.utilization) AS utilization_max,
    max(s.memory_used) AS memory_used_max,
    k.memory_total AS memory_total
FROM devices AS d
LEFT JOIN known AS k ON k.uuid = d.uuid
LEFT JOIN during AS s ON s.uuid = d.uuid AND s.pid IS NULL
GROUP BY k.device, d.uuid, k.name, k.memory_total
ORDER BY k.device NULLS LAST, d.uuid
