-- `agenttrace orphans RUN`: processes still alive when the agent's root process exited.
-- started_by_span: the span of the process that started it (its parent), as the watcher saw it.
SELECT
    pid,
    command_line,
    executable,
    TRY_CAST(s.attributes['agenttrace.process.age_at_exit_s'] AS DOUBLE) AS age_s,
    p.parent_span_id AS started_by_span,
    p.span_id,
    p.end_time,
    coalesce(TRY_CAST(s.attributes['agenttrace.process.still_running'] AS BOOLEAN), false) AS left_running
FROM processes p
JOIN spans s USING (run_id, span_id)
WHERE p.run_id = $run_id AND p.alive_at_exit
ORDER BY p.start_time, pid;
