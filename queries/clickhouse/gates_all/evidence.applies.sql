-- All-runs form of evidence's `-- applies:` query: one row per run in {runs:Array(String)} that has a runs row.
SELECT
    r.run_id AS run_id,
    CAST(r.run_id IN (SELECT run_id FROM claims WHERE has({runs:Array(String)}, run_id)), 'Bool') AS applies
FROM runs AS r
WHERE has({runs:Array(String)}, r.run_id)
ORDER BY run_id
