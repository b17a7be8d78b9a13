-- All-runs form of queries/gates/integrity.sql: every run in {runs:Array(String)} at once.
SELECT assumeNotNull(_run) AS run_id, reason, span_id, part
FROM (
    SELECT run_id AS _run, reason, CAST(NULL AS Nullable(String)) AS span_id, part
    FROM integrity_problems
    WHERE has({runs:Array(String)}, run_id)
    UNION ALL
    SELECT
        run_id AS _run,
        'the run was recorded by `agenttrace run` (supervisor pid ' || supervisor_pid || ') but its manifest '
            || 'is missing: its records cannot be checked' AS reason,
        root_span_id AS span_id,
        NULL AS part
    FROM runs
    WHERE has({runs:Array(String)}, run_id) AND NOT supervised AND NOT (recorded_gates IS NULL) AND state <> 'running'
) AS _l_0
ORDER BY _run, part NULLS FIRST, reason
