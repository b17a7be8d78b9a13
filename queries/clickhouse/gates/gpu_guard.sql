-- description: GPU work was guarded: every GPU the run's processes used was leased to it (--gpu), no process outside the run used a leased GPU, no Xid, uncorrected ECC error or out-of-memory hit a leased GPU, and the lease held to the end.
-- severity: error
-- applies: SELECT EXISTS (FROM spans WHERE run_id = $run_id AND attributes['agenttrace.span.type'] = 'gpu_lease' AND origin IS DISTINCT FROM 'agent') OR EXISTS (FROM gpu_samples WHERE run_id = $run_id AND pid IS NOT NULL AND in_run AND origin IS DISTINCT FROM 'agent')
--
-- ClickHouse variant of queries/gates/gpu_guard.sql (same columns, same reasons): see the DuckDB
-- file for what each part decides. Why hand-written: `unnest(l.devices)` is ARRAY JOIN; the
-- LEFT JOIN LATERAL string_agg over a span's events is arrayStringConcat over `events`; a
-- ClickHouse join's ON takes equalities only (the time window is in WHERE: inner joins);
-- TRY_CAST(json(..) AS VARCHAR[]) is JSONExtractArrayRaw; strftime's `%M` is `%i`; `//` is
-- intDiv; NOT IN keeps SQL's NULL rule. `arg_max(time, memory_used)` ties (the peak held over several
-- samples) are broken here as the last sample at the peak, which is what DuckDB's join order gives.
WITH
lease AS (
    SELECT
        span_id,
        start_time,
        coalesce(end_time, (SELECT ended FROM runs WHERE run_id = {run_id:String})) AS end_time,
        ended,
        if(isValidJSON(attributes['agenttrace.gpu.lease.devices']) AND JSONType(attributes['agenttrace.gpu.lease.devices']) = 'Array',
           arrayMap(e -> if(JSONType(e) = 'Null', NULL, JSONExtractString(e)),
                    JSONExtractArrayRaw(assumeNotNull(attributes['agenttrace.gpu.lease.devices']))),
           []) AS devices,
        attributes['agenttrace.gpu.lease.lost'] AS lost
    FROM spans
    WHERE run_id = {run_id:String}
      AND attributes['agenttrace.span.type'] = 'gpu_lease'
      AND origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT DISTINCT l.span_id AS span_id, l.start_time AS start_time, l.end_time AS end_time, uuid
    FROM lease AS l
    ARRAY JOIN l.devices AS uuid
),
samples AS (
    SELECT * FROM gpu_samples WHERE run_id = {run_id:String} AND origin IS DISTINCT FROM 'agent'
),
on_leased AS (  -- a sample of a leased device, taken while the lease was held
    SELECT s.*, l.span_id AS lease_span_id
    FROM samples AS s
    INNER JOIN leased AS l ON l.uuid = s.uuid
    WHERE s.time BETWEEN l.start_time AND coalesce(l.end_time, s.time)
),
events_on_leased AS (
    SELECT e.*, l.span_id AS lease_span_id
    FROM gpu_events AS e
    INNER JOIN leased AS l ON l.uuid = e.uuid
    WHERE e.time BETWEEN l.start_time AND coalesce(l.end_time, e.time)
      AND e.run_id = {run_id:String} AND e.origin IS DISTINCT FROM 'agent'
),
run_root AS (
    SELECT root_span_id FROM runs WHERE run_id = {run_id:String}
),
oom_said AS (  -- a CUDA out-of-memory error the run's own records carry
    SELECT span_id, time, coalesce(status_message, _events_message) AS message
    FROM (
        SELECT
            s.span_id AS span_id,
            s.start_time AS time,
            s.status_message AS status_message,
            if(empty(s.events), NULL,
               arrayStringConcat(arrayMap(ev -> coalesce(ev.Attributes['exception.message'], ''), s.events), ' ')) AS _events_message
        FROM spans AS s
        WHERE s.run_id = {run_id:String}
    )
    WHERE match(
        concat(coalesce(status_message, ''), ' ', coalesce(_events_message, '')),
        'CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|OutOfMemoryError'
    )
    UNION ALL
    SELECT span_id, time, body
    FROM logs
    WHERE run_id = {run_id:String}
      AND match(body, 'CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|OutOfMemoryError')
)
SELECT * FROM (
SELECT
    concat('process ', toString(pid), ' (`', coalesce(any(command_line), '?'), '`) of this run used GPU ', toString(device),
        ' (', uuid, ') from ', formatDateTime(min(time), '%H:%i:%S'),
        if((SELECT count() FROM lease) = 0, ', and the run leased no GPU (agenttrace run --gpu)',
           ', which the run did not lease')) AS reason,
    (SELECT root_span_id FROM run_root) AS span_id,
    device,
    uuid,
    pid,
    any(command_line) AS command_line,
    min(time) AS time
FROM samples
WHERE pid IS NOT NULL AND in_run
  AND (NOT EXISTS (SELECT 1 FROM leased)
       OR (uuid NOT IN (SELECT uuid FROM leased) AND NOT EXISTS (SELECT 1 FROM leased WHERE uuid IS NULL)))
GROUP BY device, uuid, pid
UNION ALL
SELECT
    concat('process ', toString(pid), ' (`', coalesce(any(command_line), '?'), '`), not part of this run, used leased GPU ',
        toString(device), ' (', uuid, ') from ', formatDateTime(min(time), '%H:%i:%S'), ', ',
        coalesce(concat(toString(intDiv(max(process_memory), 1048576)), ' MiB'), 'memory not reported')),
    any(lease_span_id),
    device,
    uuid,
    pid,
    any(command_line),
    min(time)
FROM on_leased
WHERE pid IS NOT NULL AND NOT coalesce(in_run, false)
GROUP BY device, uuid, pid
UNION ALL
SELECT
    if(kind = 'xid',
       concat('Xid ', toString(xid), ' on leased GPU ', toString(device), ' (', uuid, ') at ', formatDateTime(time, '%H:%i:%S')),
       concat(toString(errors), ' uncorrected ECC error(s) on leased GPU ', toString(device), ' (', uuid, ') at ',
              formatDateTime(time, '%H:%i:%S'))),
    lease_span_id,
    device,
    uuid,
    NULL,
    NULL,
    time
FROM events_on_leased
UNION ALL
SELECT
    concat('leased GPU ', toString(device), ' (', uuid, ') ran out of memory: ', toString(intDiv(max(memory_used), 1048576)), ' of ',
        toString(intDiv(any(memory_total), 1048576)), ' MiB in use at ', formatDateTime(argMax(time, (memory_used, time)), '%H:%i:%S')),
    any(lease_span_id),
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
    concat('CUDA ran out of memory: ', leftUTF8(replaceRegexpAll(message, '\\s+', ' '), 200)),
    span_id,
    NULL,
    NULL,
    NULL,
    NULL,
    time
FROM oom_said
UNION ALL
SELECT concat('the GPU lease was lost: ', lost), span_id, NULL, NULL, NULL, NULL, start_time
FROM lease
WHERE lost IS NOT NULL
UNION ALL
SELECT 'the GPU lease was never let go: the supervisor holding it did not end it (killed?)', span_id, NULL, NULL,
    NULL, NULL, start_time
FROM lease
WHERE NOT ended
UNION ALL
SELECT
    concat('the leased GPU(s) were never sampled (NVML ', coalesce((
        SELECT attributes['agenttrace.gpu.sampling'] FROM spans
        WHERE run_id = {run_id:String} AND span_id = (SELECT root_span_id FROM run_root)
    ), 'not recorded'), '): nobody else''s use of them can be ruled out'),
    span_id, NULL, NULL, NULL, NULL, start_time
FROM lease
WHERE NOT EXISTS (SELECT 1 FROM samples WHERE pid IS NULL AND uuid IN (SELECT uuid FROM leased))
)
ORDER BY time, reason
