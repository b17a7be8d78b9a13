-- The header of `agenttrace show`.
SELECT run_id, name, state, started, ended, duration_s, exit_code, signal, command,
       span_count, unfinished_count, error_count, root_span_id, service_name, status_message
FROM runs
WHERE run_id = $run_id;
