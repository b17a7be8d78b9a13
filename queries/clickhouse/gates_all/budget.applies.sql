-- All-runs form of budget's `-- applies:` (read from `runs`: a row for every run that has one)
SELECT
    run_id,
    toBool(NOT (COALESCE(
        CASE WHEN toString(JSONType(objective_json, 'limits', 'tokens')) = 'String' THEN JSONExtractString(objective_json, 'limits', 'tokens')
             WHEN toString(JSONType(objective_json, 'limits', 'tokens')) <> 'Null' THEN JSONExtractRaw(objective_json, 'limits', 'tokens') ELSE NULL END,
        CASE WHEN toString(JSONType(objective_json, 'limits', 'cost_usd')) = 'String' THEN JSONExtractString(objective_json, 'limits', 'cost_usd')
             WHEN toString(JSONType(objective_json, 'limits', 'cost_usd')) <> 'Null' THEN JSONExtractRaw(objective_json, 'limits', 'cost_usd') ELSE NULL END,
        CASE WHEN toString(JSONType(objective_json, 'limits', 'wall_time_s')) = 'String' THEN JSONExtractString(objective_json, 'limits', 'wall_time_s')
             WHEN toString(JSONType(objective_json, 'limits', 'wall_time_s')) <> 'Null' THEN JSONExtractRaw(objective_json, 'limits', 'wall_time_s') ELSE NULL END
    ) IS NULL)) AS applies
FROM runs
WHERE has({runs:Array(String)}, run_id)
ORDER BY run_id
