-- description: The run's records are as its supervisor wrote them: no part added, changed or deleted since, and the manifest is there.
-- severity: error
-- applies: SELECT EXISTS (FROM supervised_runs WHERE run_id = $run_id) OR EXISTS (FROM runs WHERE run_id = $run_id AND recorded_gates IS NOT NULL)
SELECT reason, NULL::VARCHAR AS span_id, part
FROM integrity_problems
WHERE run_id = $run_id
UNION ALL
SELECT
    'the run was recorded by `agenttrace run` (supervisor pid ' || supervisor_pid || ') but its manifest '
        || 'is missing: its records cannot be checked' AS reason,
    root_span_id AS span_id,
    NULL AS part
FROM runs
WHERE run_id = $run_id AND NOT supervised AND recorded_gates IS NOT NULL AND state <> 'running'
ORDER BY part NULLS FIRST, reason;
