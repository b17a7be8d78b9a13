-- All-runs form of deliverables's `-- applies:` query: one row per run in {runs:Array(String)} that has a runs row.
SELECT
    run_id,
    CAST(COALESCE(multiIf(toString(JSONType(objective_json, 'deliverables')) = 'Array', JSONLength(objective_json, 'deliverables'),
                          JSONHas(objective_json, 'deliverables'), 0, NULL), 0) > 0, 'Nullable(Bool)') AS applies
FROM runs
WHERE has({runs:Array(String)}, run_id)
ORDER BY run_id
