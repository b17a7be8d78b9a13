-- description: GPU work was guarded: every GPU the run's processes used was leased to it (--gpu), no process outside the run used a leased GPU, no Xid, uncorrected ECC error or out-of-memory hit a leased GPU, and the lease held to the end.
-- severity: error
-- applies: SELECT EXISTS (FROM spans WHERE run_id = $run_id AND attributes['agenttrace.span.type'] = 'gpu_lease' AND origin IS DISTINCT FROM 'agent') OR EXISTS (FROM gpu_samples WHERE run_id = $run_id AND pid IS NOT NULL AND in_run AND origin IS DISTINCT FROM 'agent')
--
-- What decides it is what `agenttrace run` recorded itself (origin `supervisor`): its lease span
-- and its NVML samples. `hw.gpu.*` metrics or lease spans the agent sends about itself (origin
-- `agent`) are left out: they prove nothing.
--   * a process of the run (`in_run`: in the supervisor's process tree when sampled) on a device
--     the run did not lease, or on any device when it leased none;
--   * a process outside the run on a leased device while the lease was held: the reason names its
--     pid, command line and when it was first seen;
--   * an Xid or uncorrected ECC error (NVML's events, or the device's error total rising) on a
--     leased device during the lease;
--   * out of memory on a leased device: NVML showed 99% or more of its memory in use, or the run's
--     spans or logs carry a CUDA out-of-memory error (PyTorch's OutOfMemoryError, CUDA's
--     CUDA_ERROR_OUT_OF_MEMORY / cudaErrorMemoryAllocation);
--   * the lease was lost (its lock file removed or rewritten while the run held it), never let go,
--     or the leased devices were never sampled (nobody else's use could be ruled out).
WITH lease AS (
    SELECT
        span_id,
        start_time,
        coalesce(end_time, (SELECT ended FROM runs WHERE run_id = $run_id)) AS end_time,
        ended,
        TRY_CAST(json(attributes['agenttrace.gpu.lease.devices']) AS VARCHAR[]) AS devices,
        attributes['agenttrace.gpu.lease.lost'] AS lost
    FROM spans
    WHERE run_id = $run_id
      AND attributes['agenttrace.span.type'] = 'gpu_lease'
      AND origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT DISTINCT l.span_id, l.start_time, l.end_time, d.uuid
    FROM lease l, unnest(l.devices) AS d(uuid)
),
samples AS (
    SELECT * FROM gpu_samples WHERE run_id = $run_id AND origin IS DISTINCT FROM 'agent'
),
on_leased AS (  -- a sample of a leased device, taken while the lease was held
    SELECT s.*, l.span_id AS lease_span_id
    FROM samples s
    JOIN leased l ON l.uuid = s.uuid AND s.time BETWEEN l.start_time AND coalesce(l.end_time, s.time)
),
events_on_leased AS (
    SELECT e.*, l.span_id AS lease_span_id
    FROM gpu_events e
    JOIN leased l ON l.uuid = e.uuid AND e.time BETWEEN l.start_time AND coalesce(l.end_time, e.time)
    WHERE e.run_id = $run_id AND e.origin IS DISTINCT FROM 'agent'
),
run_root AS (
    SELECT root_span_id FROM runs WHERE run_id = $run_id
),
oom_said AS (  -- a CUDA out-of-memory error the run's own records carry
    SELECT s.span_id, s.start_time AS time, coalesce(s.status_message, e.message) AS message
    FROM spans s
    LEFT JOIN LATERAL (
        SELECT string_agg(coalesce(ev.Attributes['exception.message'], ''), ' ') AS message
        FROM unnest(s.events) AS u(ev)
    ) e ON true
    WHERE s.run_id = $run_id
      AND regexp_matches(
          coalesce(s.status_message, '') || ' ' || coalesce(e.message, ''),
          'CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|OutOfMemoryError'
      )
    UNION ALL
    SELECT span_id, time, body
    FROM logs
    WHERE run_id = $run_id
      AND regexp_matches(body, 'CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|OutOfMemoryError')
)
SELECT
    'process ' || pid || ' (`' || coalesce(any_value(command_line), '?') || '`) of this run used GPU ' || device
        || ' (' || uuid || ') from ' || strftime(min(time), '%H:%M:%S')
        || CASE WHEN (SELECT count(*) FROM lease) = 0 THEN ', and the run leased no GPU (agenttrace run --gpu)'
                ELSE ', which the run did not lease' END AS reason,
    (SELECT root_span_id FROM run_root) AS span_id,
    device,
    uuid,
    pid,
    any_value(command_line) AS command_line,
    min(time) AS time
FROM samples
WHERE pid IS NOT NULL AND in_run AND uuid NOT IN (SELECT uuid FROM leased)
GROUP BY device, uuid, pid
UNION ALL
SELECT
    'process ' || pid || ' (`' || coalesce(any_value(command_line), '?') || '`), not part of this run, used leased GPU '
        || device || ' (' || uuid || ') from ' || strftime(min(time), '%H:%M:%S') || ', '
        || coalesce(max(process_memory) // 1048576 || ' MiB', 'memory not reported'),
    any_value(lease_span_id),
    device,
    uuid,
    pid,
    any_value(command_line),
    min(time)
FROM on_leased
WHERE pid IS NOT NULL AND NOT coalesce(in_run, false)
GROUP BY device, uuid, pid
UNION ALL
SELECT
    CASE kind
        WHEN 'xid' THEN 'Xid ' || xid || ' on leased GPU ' || device || ' (' || uuid || ') at '
            || strftime(time, '%H:%M:%S')
        ELSE errors || ' uncorrected ECC error(s) on leased GPU ' || device || ' (' || uuid || ') at '
            || strftime(time, '%H:%M:%S')
    END,
    lease_span_id,
    device,
    uuid,
    NULL,
    NULL,
    time
FROM events_on_leased
UNION ALL
SELECT
    'leased GPU ' || device || ' (' || uuid || ') ran out of memory: ' || max(memory_used) // 1048576 || ' of '
        || any_value(memory_total) // 1048576 || ' MiB in use at ' || strftime(arg_max(time, memory_used), '%H:%M:%S'),
    any_value(lease_span_id),
    device,
    uuid,
    NULL,
    NULL,
    min(time)
FROM on_leased
WHERE pid IS NULL AND memory_total > 0 AND memory_used >= 0.99 * memory_total
GROUP BY device, uuid
UNION ALL
SELECT
    'CUDA ran out of memory: ' || left(regexp_replace(message, '\s+', ' ', 'g'), 200),
    span_id,
    NULL,
    NULL,
    NULL,
    NULL,
    time
FROM oom_said
UNION ALL
SELECT 'the GPU lease was lost: ' || lost, span_id, NULL, NULL, NULL, NULL, start_time
FROM lease
WHERE lost IS NOT NULL
UNION ALL
SELECT 'the GPU lease was never let go: the supervisor holding it did not end it (killed?)', span_id, NULL, NULL,
    NULL, NULL, start_time
FROM lease
WHERE NOT ended
UNION ALL
SELECT
    'the leased GPU(s) were never sampled (NVML ' || coalesce((
        SELECT attributes['agenttrace.gpu.sampling'] FROM spans
        WHERE run_id = $run_id AND span_id = (SELECT root_span_id FROM run_root)
    ), 'not recorded') || '): nobody else''s use of them can be ruled out',
    span_id, NULL, NULL, NULL, NULL, start_time
FROM lease
WHERE NOT EXISTS (FROM samples WHERE pid IS NULL AND uuid IN (SELECT uuid FROM leased))
ORDER BY 7, 1;
