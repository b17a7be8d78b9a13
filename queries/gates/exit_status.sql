-- description: The agent's root process exited 0, was not killed by a signal, and did not time out.
-- severity: error
-- applies: SELECT exit_code IS NOT NULL OR signal IS NOT NULL OR state IN ('timed_out', 'cancelled') FROM runs WHERE run_id = $run_id
SELECT
    CASE
        WHEN state = 'timed_out' THEN 'the run timed out: the agent was stopped before it finished'
        WHEN state = 'cancelled' THEN 'the run was cancelled (interrupted) before the agent finished'
        WHEN signal IS NOT NULL THEN 'the agent was killed by signal ' || signal
        ELSE 'the agent exited with code ' || exit_code
    END AS reason,
    root_span_id AS span_id,
    exit_code,
    signal,
    state
FROM runs
WHERE run_id = $run_id
  AND (state IN ('timed_out', 'cancelled') OR signal IS NOT NULL OR coalesce(exit_code, 0) <> 0);
