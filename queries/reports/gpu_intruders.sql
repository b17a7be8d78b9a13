-- `agenttrace show`: processes outside the run (`in_run` not true in `agenttrace run`'s NVML
-- samples) seen on a leased GPU while the lease was held: one row per process and device, with
-- its command line, when it was first and last seen there, and its peak device memory. The same
-- processes `gpu_guard` names as intruders.
WITH lease AS (
    SELECT
        span_id,
        start_time,
        coalesce(end_time, (SELECT ended FROM runs WHERE run_id = $run_id)) AS end_time,
        TRY_CAST(json(attributes['agenttrace.gpu.lease.devices']) AS VARCHAR[]) AS devices
    FROM spans
    WHERE run_id = $run_id
      AND attributes['agenttrace.span.type'] = 'gpu_lease'
      AND origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT DISTINCT l.span_id, l.start_time, l.end_time, d.uuid
    FROM lease l, unnest(l.devices) AS d(uuid)
)
SELECT
    s.pid,
    any_value(s.command_line) AS command_line,
    s.device,
    s.uuid,
    min(s.time) AS first_seen,
    max(s.time) AS last_seen,
    count(*) AS samples,
    max(s.process_memory) AS peak_memory,
    any_value(l.span_id) AS lease_span_id
FROM gpu_samples s
JOIN leased l ON l.uuid = s.uuid AND s.time BETWEEN l.start_time AND coalesce(l.end_time, s.time)
WHERE s.run_id = $run_id AND s.pid IS NOT NULL AND NOT coalesce(s.in_run, false)
  AND s.origin IS DISTINCT FROM 'agent'
GROUP BY s.device, s.uuid, s.pid
ORDER BY first_seen, s.pid, s.device;
