-- All-runs form of queries/gates/exit_status.sql: every run in {runs:Array(String)} at once.
SELECT
    run_id,
    CASE
        WHEN state = 'timed_out' THEN 'the run timed out: the agent was stopped before it finished'
        WHEN state = 'cancelled' THEN 'the run was cancelled (interrupted) before the agent finished'
        WHEN NOT (signal IS NULL) THEN 'the agent was killed by signal ' || signal
        ELSE 'the agent exited with code ' || exit_code
    END AS reason,
    root_span_id AS span_id,
    exit_code,
    signal,
    state
FROM runs
WHERE has({runs:Array(String)}, run_id)
  AND (state IN ('timed_out', 'cancelled') OR NOT (signal IS NULL) OR COALESCE(exit_code, 0) <> 0)
ORDER BY run_id, reason, span_id, exit_code, signal, state
