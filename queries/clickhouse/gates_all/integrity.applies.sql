-- All-runs form of integrity's `-- applies:` (two EXISTS: a row for every run asked for)
SELECT
    r.run_id AS run_id,
    toBool(r.run_id IN (SELECT run_id FROM supervised_runs WHERE has({runs:Array(String)}, run_id))
           OR r.run_id IN (SELECT run_id FROM runs WHERE has({runs:Array(String)}, run_id) AND NOT (recorded_gates IS NULL))) AS applies
FROM (SELECT arrayJoin(arrayDistinct({runs:Array(String)})) AS run_id) AS r
ORDER BY run_id
