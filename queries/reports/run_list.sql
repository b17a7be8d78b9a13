-- `agenttrace runs`: every run, oldest first, optionally only those in one state.
SELECT run_id, name, state, started, ended, duration_s, exit_code, signal, command, objective,
       span_count, unfinished_count, error_count
FROM runs
WHERE $state IS NULL OR state = $state
ORDER BY started, run_id;
