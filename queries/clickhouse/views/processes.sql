-- ClickHouse variant of queries/views/processes.sql (same meaning, same columns): a variant because
-- the DuckDB file uses `UNION ALL BY NAME`, `e.* REPLACE (...)` and `epoch()`. The columns are
-- listed instead; `NOT EXISTS` is a LEFT JOIN that found no match (no correlated subquery needed);
-- TRY_CAST to BOOLEAN is spelled out (ClickHouse's CAST to Nullable(Bool) throws on other text).
CREATE OR REPLACE VIEW processes AS
WITH candidates AS (
    SELECT
        run_id,
        span_id,
        parent_span_id,
        CAST(attributes['process.pid'], 'Nullable(Int64)') AS pid,
        CAST(attributes['process.parent_pid'], 'Nullable(Int64)') AS parent_pid,
        coalesce(attributes['process.executable.name'], attributes['process.command']) AS executable,
        coalesce(attributes['process.command_line'], attributes['process.command_args']) AS command_line,
        start_time,
        end_time,
        CAST(attributes['process.exit.code'], 'Nullable(Int32)') AS exit_code,
        attributes['agenttrace.process.signal'] AS signal,
        coalesce(
            multiIf(lower(attributes['agenttrace.process.alive_at_exit']) IN ('true', 't', 'yes', 'y', '1'), true,
                    lower(attributes['agenttrace.process.alive_at_exit']) IN ('false', 'f', 'no', 'n', '0'), false,
                    NULL),
            false) AS alive_at_exit,
        ended,
        status_code,
        CASE WHEN attributes['agenttrace.process.source'] = 'watcher' AND origin = 'agent' THEN 'span'
             ELSE coalesce(attributes['agenttrace.process.source'], 'span') END AS source,
        origin
    FROM spans
    WHERE attributes['agenttrace.span.type'] = 'process'
       OR (attributes['process.pid'] IS NOT NULL
           AND (attributes['process.exit.code'] IS NOT NULL OR attributes['process.command_line'] IS NOT NULL)
           AND attributes['agenttrace.span.type'] IS DISTINCT FROM 'run'
           AND attributes['gen_ai.operation.name'] IS NULL)
),
watched AS (SELECT * FROM candidates WHERE source = 'watcher'),
exact AS (SELECT * FROM candidates WHERE source <> 'watcher')
SELECT
    e.run_id AS run_id,
    e.span_id AS span_id,
    e.parent_span_id AS parent_span_id,
    e.pid AS pid,
    e.parent_pid AS parent_pid,
    e.executable AS executable,
    e.command_line AS command_line,
    e.start_time AS start_time,
    e.end_time AS end_time,
    -- the agent's own record of a process does not override how the supervisor saw it end
    CASE WHEN e.origin = 'agent' AND (w.exit_code IS NOT NULL OR w.signal IS NOT NULL)
         THEN w.exit_code ELSE e.exit_code END AS exit_code,
    CASE WHEN e.origin = 'agent' AND (w.exit_code IS NOT NULL OR w.signal IS NOT NULL)
         THEN w.signal ELSE e.signal END AS signal,
    e.alive_at_exit OR coalesce(w.alive_at_exit, false) AS alive_at_exit,
    e.ended AS ended,
    e.status_code AS status_code,
    e.source AS source,
    e.origin AS origin
FROM exact AS e
LEFT JOIN watched AS w
  ON w.run_id = e.run_id AND w.pid = e.pid
 AND abs(toUnixTimestamp64Micro(w.start_time) / 1e6 - toUnixTimestamp64Micro(e.start_time) / 1e6) < 2
UNION ALL
SELECT
    w.run_id AS run_id,
    w.span_id AS span_id,
    w.parent_span_id AS parent_span_id,
    w.pid AS pid,
    w.parent_pid AS parent_pid,
    w.executable AS executable,
    w.command_line AS command_line,
    w.start_time AS start_time,
    w.end_time AS end_time,
    w.exit_code AS exit_code,
    w.signal AS signal,
    w.alive_at_exit AS alive_at_exit,
    w.ended AS ended,
    w.status_code AS status_code,
    w.source AS source,
    w.origin AS origin
FROM watched AS w
LEFT JOIN (SELECT run_id, pid, start_time, 1 AS _matched FROM exact) AS e
  ON e.run_id = w.run_id AND e.pid = w.pid
 AND abs(toUnixTimestamp64Micro(w.start_time) / 1e6 - toUnixTimestamp64Micro(e.start_time) / 1e6) < 2
WHERE e._matched IS NULL;
