-- All-runs form of gpu_guard's `-- applies:` query: one row per run in {runs:Array(String)} that has a runs row.
SELECT
    r.run_id AS run_id,
    CAST(r.run_id IN (
            SELECT run_id FROM spans
            WHERE has({runs:Array(String)}, run_id) AND attributes['agenttrace.span.type'] = 'gpu_lease'
              AND origin IS DISTINCT FROM 'agent')
        OR r.run_id IN (
            SELECT run_id FROM gpu_samples
            WHERE has({runs:Array(String)}, run_id) AND pid IS NOT NULL AND in_run AND origin IS DISTINCT FROM 'agent'),
        'Bool') AS applies
FROM runs AS r
WHERE has({runs:Array(String)}, r.run_id)
ORDER BY run_id
