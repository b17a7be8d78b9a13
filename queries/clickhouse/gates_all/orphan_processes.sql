-- All-runs form of queries/gates/orphan_processes.sql: every run in {runs:Array(String)} at once.
SELECT
    run_id,
    'process ' || pid || ' (`' || COALESCE(nullIf(command_line, ''), executable, '?')
        || '`) was still running when the agent exited' AS reason,
    span_id,
    pid,
    command_line,
    parent_span_id AS started_by_span
FROM processes
WHERE has({runs:Array(String)}, run_id) AND alive_at_exit
ORDER BY run_id, start_time, pid
