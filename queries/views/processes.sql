-- One row per OS process the run spawned: agenttrace's process spans, and any span that follows
-- the OTel process / CLI conventions (`process.pid` with `process.exit.code` or a process span type).
--
-- `agenttrace run` can see one process twice: its watcher polls /proc (source `watcher`: every
-- descendant, any language, exit code only where the kernel tells it), and the Python bootstrap
-- records the subprocesses it spawns exactly (source `python`: exit code, parent tool span). The
-- exact record wins; `alive_at_exit` comes from the watcher, the only one that looks at the end.
-- Only the supervisor's records are the watcher's: the agent cannot report itself one, and where the
-- watcher knows how a process ended, that wins over what the agent reported about it.
CREATE OR REPLACE VIEW processes AS
WITH candidates AS (
    SELECT
        run_id,
        span_id,
        parent_span_id,
        TRY_CAST(attributes['process.pid'] AS BIGINT) AS pid,
        TRY_CAST(attributes['process.parent_pid'] AS BIGINT) AS parent_pid,
        coalesce(attributes['process.executable.name'], attributes['process.command']) AS executable,
        coalesce(attributes['process.command_line'], attributes['process.command_args']) AS command_line,
        start_time,
        end_time,
        TRY_CAST(attributes['process.exit.code'] AS INTEGER) AS exit_code,
        attributes['agenttrace.process.signal'] AS signal,
        coalesce(TRY_CAST(attributes['agenttrace.process.alive_at_exit'] AS BOOLEAN), false) AS alive_at_exit,
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
SELECT e.* REPLACE (
    e.alive_at_exit OR coalesce(w.alive_at_exit, false) AS alive_at_exit,
    -- the agent's own record of a process does not override how the supervisor saw it end
    CASE WHEN e.origin = 'agent' AND (w.exit_code IS NOT NULL OR w.signal IS NOT NULL)
         THEN w.exit_code ELSE e.exit_code END AS exit_code,
    CASE WHEN e.origin = 'agent' AND (w.exit_code IS NOT NULL OR w.signal IS NOT NULL)
         THEN w.signal ELSE e.signal END AS signal
)
FROM exact e
LEFT JOIN watched w
  ON w.run_id = e.run_id AND w.pid = e.pid AND abs(epoch(w.start_time) - epoch(e.start_time)) < 2
UNION ALL BY NAME
SELECT w.*
FROM watched w
WHERE NOT EXISTS (
    SELECT 1 FROM exact e
    WHERE e.run_id = w.run_id AND e.pid = w.pid AND abs(epoch(w.start_time) - epoch(e.start_time)) < 2
);
