-- All-runs form of completion_signal's `-- applies:` (two EXISTS: a row for every run asked for)
SELECT
    r.run_id AS run_id,
    toBool(r.run_id IN (SELECT run_id FROM steps WHERE has({runs:Array(String)}, run_id) AND kind = 'llm')
           OR r.run_id IN (SELECT run_id FROM model_api_calls WHERE has({runs:Array(String)}, run_id))) AS applies
FROM (SELECT arrayJoin(arrayDistinct({runs:Array(String)})) AS run_id) AS r
ORDER BY run_id
