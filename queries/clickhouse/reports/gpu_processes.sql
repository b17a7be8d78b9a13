-- ClickHouse variant of queries/reports/gpu_processes.sql (same meaning, same columns): DuckDB's
-- `unnest(TRY_CAST(json(x) AS VARCHAR[]))` is arrayJoin over JSONExtractArrayRaw (each element read
-- as DuckDB does: a string unquoted, a JSON null NULL, anything else its JSON text).
-- The run's processes seen on a GPU (`in_run` in `agenttrace run`'s NVML samples): one row per
-- process and device, with its span in the run's process tree (`span_id`, as `processes` has it;
-- NULL when no process of the tree matches), when it was first and last seen there, and its peak
-- device memory. A sample is the process's whose pid it has and that started when the process
-- did (within 2 s; where the sample has no start time, it was taken while the process ran), the
-- closest such start first. `leased`: the run leased that device (`agenttrace run --gpu`).
-- For `agenttrace show` (marks on processes) and `agenttrace step` (the GPU use under a step).
WITH seen AS (
    SELECT *
    FROM gpu_samples
    WHERE run_id = {run_id:String} AND pid IS NOT NULL AND in_run AND origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT DISTINCT arrayJoin(arrayMap(j -> multiIf(JSONType(j) = 'Null', NULL, JSONType(j) = 'String', JSONExtractString(j), j),
                                       JSONExtractArrayRaw(coalesce(attributes['agenttrace.gpu.lease.devices'], '')))) AS uuid
    FROM spans
    WHERE run_id = {run_id:String} AND attributes['agenttrace.span.type'] = 'gpu_lease' AND origin IS DISTINCT FROM 'agent'
),
matched AS (
    SELECT s.time AS time, s.device AS device, s.uuid AS uuid, s.pid AS pid, s.process_memory AS process_memory,
           s.command_line AS command_line, s.process_start_time AS process_start_time, p.span_id AS span_id
    FROM seen AS s
    LEFT JOIN processes AS p
      ON p.run_id = {run_id:String} AND p.pid = s.pid
     AND CASE WHEN s.process_start_time IS NOT NULL
              THEN abs(toUnixTimestamp64Micro(s.process_start_time) / 1e6 - toUnixTimestamp64Micro(p.start_time) / 1e6) < 2
              ELSE s.time BETWEEN p.start_time - INTERVAL 2 SECOND
                              AND coalesce(p.end_time, s.time) + INTERVAL 2 SECOND
         END
    QUALIFY row_number() OVER (
        PARTITION BY s.time, s.uuid, s.pid
        ORDER BY abs(toUnixTimestamp64Micro(coalesce(s.process_start_time, s.time)) / 1e6
                     - toUnixTimestamp64Micro(p.start_time) / 1e6), p.span_id
    ) = 1
)
SELECT
    span_id,
    pid,
    any(command_line) AS command_line,
    device,
    uuid,
    toBool(uuid IN (SELECT uuid FROM leased)) AS leased,
    min(time) AS first_seen,
    max(time) AS last_seen,
    count(*) AS samples,
    max(process_memory) AS peak_memory
FROM matched
GROUP BY span_id, pid, process_start_time, device, uuid
ORDER BY first_seen, pid, device, uuid
