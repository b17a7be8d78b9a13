-- ClickHouse variant of queries/reports/report_gpu.sql (same meaning, same columns): DuckDB's
-- `lag()` is `lagInFrame()` over a whole-partition-to-current-row frame here (NULL for the first).
-- `agenttrace report`: the GPU lane of the timeline: one bar per device and stretch of samples
-- with the run's own processes on it (`agenttrace run`'s NVML samples, not the agent's), a gap
-- over $gap_s seconds starting a new stretch; peak utilization and memory in each.
WITH seen AS (
    SELECT device, uuid, time, utilization, memory_used, pid
    FROM gpu_samples
    WHERE run_id = {run_id:String} AND origin IS DISTINCT FROM 'agent'
),
marked AS (
    SELECT *,
           CASE WHEN toUnixTimestamp64Micro(time) / 1e6
                     - toUnixTimestamp64Micro(lagInFrame(toNullable(time)) OVER (
                           PARTITION BY uuid ORDER BY time ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)) / 1e6
                     > {gap_s:Float64}
                THEN 1 ELSE 0 END AS starts
    FROM seen
),
numbered AS (
    SELECT *, sum(starts) OVER (PARTITION BY uuid ORDER BY time) AS stretch FROM marked
)
SELECT
    any(device) AS device, uuid, stretch,
    min(time) AS start_time, max(time) AS end_time,
    max(utilization) AS max_utilization, max(memory_used) AS max_memory_used,
    count(*) AS samples, count(DISTINCT pid) AS processes
FROM numbered
GROUP BY uuid, stretch
ORDER BY start_time, uuid
