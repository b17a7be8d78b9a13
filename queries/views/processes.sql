-- One row per OS process the run spawned: agenttrace's process spans, and any span that follows
-- the OTel process / CLI conventions (`process.pid` with `process.exit.code` or a process span type).
CREATE OR REPLACE VIEW processes AS
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
    status_code
FROM spans
WHERE attributes['agenttrace.span.type'] = 'process'
   OR (attributes['process.pid'] IS NOT NULL
       AND (attributes['process.exit.code'] IS NOT NULL OR attributes['process.command_line'] IS NOT NULL)
       AND attributes['agenttrace.span.type'] IS DISTINCT FROM 'run'
       AND attributes['gen_ai.operation.name'] IS NULL);
