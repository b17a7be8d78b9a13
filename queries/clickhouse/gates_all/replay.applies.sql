-- All-runs form of replay's `-- applies:` query: one row per run in {runs:Array(String)} that has a runs row.
SELECT
    r.run_id AS run_id,
    CAST(r.run_id IN (
        SELECT run_id FROM spans
        WHERE has({runs:Array(String)}, run_id) AND attributes['agenttrace.replay_of'] IS NOT NULL
          AND parent_span_id IS NULL AND origin IS DISTINCT FROM 'agent'
    ), 'Bool') AS applies
FROM runs AS r
WHERE has({runs:Array(String)}, r.run_id)
ORDER BY run_id
