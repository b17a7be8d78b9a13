-- All-runs form of scope's `-- applies:` query: one row per run in {runs:Array(String)} that has a runs row.
SELECT
    run_id,
    CAST(NOT (CASE WHEN isValidJSON(objective_json) AND JSONHas(objective_json, 'scope') THEN JSONExtractRaw(objective_json, 'scope') ELSE NULL END IS NULL)
        AND CASE WHEN JSONHas(objective_json, 'scope') THEN CASE toString(JSONType(objective_json, 'scope'))
            WHEN 'Object' THEN 'OBJECT' WHEN 'Array' THEN 'ARRAY' WHEN 'String' THEN 'VARCHAR' WHEN 'UInt64' THEN 'UBIGINT'
            WHEN 'Int64' THEN CASE WHEN startsWith(JSONExtractRaw(objective_json, 'scope'), '-') THEN 'BIGINT' ELSE 'UBIGINT' END
            WHEN 'Double' THEN 'DOUBLE' WHEN 'Bool' THEN 'BOOLEAN' WHEN 'Null' THEN 'NULL' END ELSE NULL END = 'ARRAY', 'Nullable(Bool)') AS applies
FROM runs
WHERE has({runs:Array(String)}, run_id)
ORDER BY run_id
