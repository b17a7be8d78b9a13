-- ClickHouse variant of queries/reports/gpu_intruders.sql (same meaning, same columns): DuckDB's
-- `TRY_CAST(json(x) AS VARCHAR[])` and `unnest` are JSONExtractArrayRaw (each element read as
-- DuckDB does: a string unquoted, a JSON null NULL, anything else its JSON text) and ARRAY JOIN.
-- `agenttrace show`: processes outside the run (`in_run` not true in `agenttrace run`'s NVML
-- samples) seen on a leased GPU while the lease was held: one row per process and device, with
-- its command line, when it was first and last seen there, and its peak device memory. The same
-- processes `gpu_guard` names as intruders.
WITH lease AS (
    SELECT
        span_id,
        start_time,
        coalesce(end_time, (SELECT ended FROM runs WHERE run_id = {run_id:String})) AS end_time,
        arrayMap(j -> multiIf(JSONType(j) = 'Null', NULL, JSONType(j) = 'String', JSONExtractString(j), j),
                 JSONExtractArrayRaw(coalesce(attributes['agenttrace.gpu.lease.devices'], ''))) AS devices
    FROM spans
    WHERE run_id = {run_id:String}
      AND attributes['agenttrace.span.type'] = 'gpu_lease'
      AND origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT DISTINCT l.span_id AS span_id, l.start_time AS start_time, l.end_time AS end_time, d AS uuid
    FROM lease AS l
    ARRAY JOIN l.devices AS d
)
SELECT
    s.pid AS pid,
    any(s.command_line) AS command_line,
    s.device AS device,
    s.uuid AS uuid,
    min(s.time) AS first_seen,
    max(s.time) AS last_seen,
    count(*) AS samples,
    max(s.process_memory) AS peak_memory,
    any(l.span_id) AS lease_span_id
FROM gpu_samples AS s
JOIN leased AS l ON l.uuid = s.uuid
WHERE s.run_id = {run_id:String} AND s.pid IS NOT NULL AND NOT coalesce(s.in_run, false)
  AND s.origin IS DISTINCT FROM 'agent'
  AND s.time BETWEEN l.start_time AND coalesce(l.end_time, s.time)
GROUP BY s.device, s.uuid, s.pid
ORDER BY first_seen, s.pid, s.device
