-- `agenttrace diff`: every OS process of one run (the agent's own, the commands it ran, and
-- theirs), in start order, with how each ended.
SELECT pid, executable, command_line, exit_code, signal, alive_at_exit, span_id, start_time
FROM processes
WHERE run_id = $run_id
ORDER BY start_time, pid, span_id;
