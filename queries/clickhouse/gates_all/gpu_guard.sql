-- All-runs form of queries/clickhouse/gates/gpu_guard.sql: the same rows for every run in
-- {runs:Array(String)}, first column run_id, ordered by run_id then the per-run gate's ORDER BY.
-- Every join and GROUP BY is per run (run_id among the keys). The per-run scalar subqueries and
-- EXISTS tests are per-run CTEs joined on run_id: the run's `runs` row (ended, root span), its lease
-- and leased-device counts (and NULL-uuid count, for NOT IN's NULL rule), its leased uuids (`uuid NOT
-- IN leased` is an anti-join on (run_id, uuid); a NULL uuid is in no set), whether a leased device was
-- sampled, and the root span's NVML sampling attribute.
WITH
run_row AS (
    SELECT run_id, root_span_id, ended FROM runs WHERE has({runs:Array(String)}, run_id)
),
lease AS (
    SELECT
        s.run_id AS run_id,
        s.span_id AS span_id,
        s.start_time AS start_time,
        coalesce(s.end_time, rr.ended) AS end_time,
        s.ended AS ended,
        if(isValidJSON(s.attributes['agenttrace.gpu.lease.devices']) AND JSONType(s.attributes['agenttrace.gpu.lease.devices']) = 'Array',
           arrayMap(e -> if(JSONType(e) = 'Null', NULL, JSONExtractString(e)),
                    JSONExtractArrayRaw(assumeNotNull(s.attributes['agenttrace.gpu.lease.devices']))),
           []) AS devices,
        s.attributes['agenttrace.gpu.lease.lost'] AS lost
    FROM spans AS s
    LEFT JOIN run_row AS rr ON rr.run_id = s.run_id
    WHERE has({runs:Array(String)}, s.run_id)
      AND s.attributes['agenttrace.span.type'] = 'gpu_lease'
      AND s.origin IS DISTINCT FROM 'agent'
),
leased AS (
    SELECT DISTINCT l.run_id AS run_id, l.span_id AS span_id, l.start_time AS start_time, l.end_time AS end_time, uuid
    FROM lease AS l
    ARRAY JOIN l.devices AS uuid
),
lease_count AS (
    SELECT run_id, count() AS n_lease FROM lease GROUP BY run_id
),
leased_count AS (
    SELECT run_id, count() AS n_leased, countIf(uuid IS NULL) AS n_null_uuid FROM leased GROUP BY run_id
),
leased_uuids AS (
    SELECT DISTINCT run_id, uuid, true AS present FROM leased WHERE uuid IS NOT NULL
),
samples AS (
    SELECT * FROM gpu_samples WHERE has({runs:Array(String)}, run_id) AND origin IS DISTINCT FROM 'agent'
),
leased_sampled AS (  -- runs with a device-wide sample of a leased device
    SELECT DISTINCT s.run_id AS run_id, true AS sampled
    FROM samples AS s
    INNER JOIN leased_uuids AS u ON u.run_id = s.run_id AND u.uuid = s.uuid
    WHERE s.pid IS NULL
),
root_sampling AS (
    SELECT r.run_id AS run_id, sp.attributes['agenttrace.gpu.sampling'] AS sampling
    FROM run_row AS r
    INNER JOIN spans AS sp ON sp.run_id = r.run_id AND sp.span_id = r.root_span_id
    WHERE has({runs:Array(String)}, sp.run_id)
),
on_leased AS (  -- a sample of a leased device, taken while the lease was held
    SELECT s.*, l.span_id AS lease_span_id
    FROM samples AS s
    INNER JOIN leased AS l ON l.run_id = s.run_id AND l.uuid = s.uuid
    WHERE s.time BETWEEN l.start_time AND coalesce(l.end_time, s.time)
),
events_on_leased AS (
    SELECT e.*, l.span_id AS lease_span_id
    FROM gpu_events AS e
    INNER JOIN leased AS l ON l.run_id = e.run_id AND l.uuid = e.uuid
    WHERE e.time BETWEEN l.start_time AND coalesce(l.end_time, e.time)
      AND has({runs:Array(String)}, e.run_id) AND e.origin IS DISTINCT FROM 'agent'
),
oom_said AS (  -- a CUDA out-of-memory error the run's own records carry
    SELECT run_id, span_id, time, coalesce(status_message, _events_message) AS message
    FROM (
        SELECT
            s.run_id AS run_id,
            s.span_id AS span_id,
            s.start_time AS time,
            s.status_message AS status_message,
            if(empty(s.events), NULL,
               arrayStringConcat(arrayMap(ev -> coalesce(ev.Attributes['exception.message'], ''), s.events), ' ')) AS _events_message
        FROM spans AS s
        WHERE has({runs:Array(String)}, s.run_id)
    )
    WHERE match(
        concat(coalesce(status_message, ''), ' ', coalesce(_events_message, '')),
        'CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|OutOfMemoryError'
    )
    UNION ALL
    SELECT run_id, span_id, time, body
    FROM logs
    WHERE has({runs:Array(String)}, run_id)
      AND match(body, 'CUDA out of memory|CUDA_ERROR_OUT_OF_MEMORY|cudaErrorMemoryAllocation|OutOfMemoryError')
),
unleased_use AS (  -- the run's own processes on a device it did not lease
    SELECT s.run_id AS run_id, s.device AS device, s.uuid AS uuid, s.pid AS pid,
           any(s.command_line) AS command_line, min(s.time) AS time
    FROM samples AS s
    LEFT JOIN leased_count AS lc ON lc.run_id = s.run_id
    LEFT JOIN leased_uuids AS u ON u.run_id = s.run_id AND u.uuid = s.uuid
    WHERE s.pid IS NOT NULL AND s.in_run
      AND (coalesce(lc.n_leased, 0) = 0
           OR (s.uuid IS NOT NULL AND u.present IS NULL AND coalesce(lc.n_null_uuid, 0) = 0))
    GROUP BY s.run_id, s.device, s.uuid, s.pid
)
SELECT run_id, reason, span_id, device, uuid, pid, command_line, time FROM (
SELECT
    g.run_id AS run_id,
    concat('process ', toString(g.pid), ' (`', coalesce(g.command_line, '?'), '`) of this run used GPU ', toString(g.device),
        ' (', g.uuid, ') from ', formatDateTime(g.time, '%H:%i:%S'),
        if(coalesce(lc.n_lease, 0) = 0, ', and the run leased no GPU (agenttrace run --gpu)',
           ', which the run did not lease')) AS reason,
    rr.root_span_id AS span_id,
    g.device AS device,
    g.uuid AS uuid,
    g.pid AS pid,
    g.command_line AS command_line,
    g.time AS time
FROM unleased_use AS g
LEFT JOIN lease_count AS lc ON lc.run_id = g.run_id
LEFT JOIN run_row AS rr ON rr.run_id = g.run_id
UNION ALL
SELECT
    run_id,
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
GROUP BY run_id, device, uuid, pid
UNION ALL
SELECT
    run_id,
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
    run_id,
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
GROUP BY run_id, device, uuid
UNION ALL
SELECT
    run_id,
    concat('CUDA ran out of memory: ', leftUTF8(replaceRegexpAll(message, '\\s+', ' '), 200)),
    span_id,
    NULL,
    NULL,
    NULL,
    NULL,
    time
FROM oom_said
UNION ALL
SELECT run_id, concat('the GPU lease was lost: ', lost), span_id, NULL, NULL, NULL, NULL, start_time
FROM lease
WHERE lost IS NOT NULL
UNION ALL
SELECT run_id, 'the GPU lease was never let go: the supervisor holding it did not end it (killed?)', span_id, NULL, NULL,
    NULL, NULL, start_time
FROM lease
WHERE NOT ended
UNION ALL
SELECT
    l.run_id,
    concat('the leased GPU(s) were never sampled (NVML ', coalesce(rs.sampling, 'not recorded'),
        '): nobody else''s use of them can be ruled out'),
    l.span_id, NULL, NULL, NULL, NULL, l.start_time
FROM lease AS l
LEFT JOIN leased_sampled AS ls ON ls.run_id = l.run_id
LEFT JOIN root_sampling AS rs ON rs.run_id = l.run_id
WHERE ls.sampled IS NULL
)
ORDER BY run_id, time, reason
