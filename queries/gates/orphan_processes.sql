-- description: No process the agent started was still running when its root process exited.
-- severity: error
-- applies: SELECT count(*) > 0 FROM processes WHERE run_id = $run_id
SELECT
    'process ' || pid || ' (`' || coalesce(nullif(command_line, ''), executable, '?')
        || '`) was still running when the agent exited' AS reason,
    span_id,
    pid,
    command_line,
    parent_span_id AS started_by_span
FROM processes
WHERE run_id = $run_id AND alive_at_exit
ORDER BY start_time, pid;
