-- `agenttrace report`: the run's processes (as the `processes` view has them) for the timeline and
-- the process tree, the earliest first, at most $max_processes of them (`of`: how many in all).
SELECT
    span_id, parent_span_id, pid, parent_pid, executable, command_line, start_time, end_time,
    exit_code, signal, alive_at_exit, ended, status_code, origin,
    count(*) OVER () AS "of"
FROM processes
WHERE run_id = $run_id
QUALIFY row_number() OVER (ORDER BY start_time, pid, span_id) <= $max_processes
ORDER BY start_time, pid, span_id;
