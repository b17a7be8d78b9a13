-- All-runs form of unrecovered_errors' `-- applies:` (a count: a row for every run asked for)
SELECT
    r.run_id AS run_id,
    toBool(r.run_id IN (SELECT run_id FROM steps
                        WHERE has({runs:Array(String)}, run_id) AND kind IN ('llm', 'tool', 'agent', 'process'))) AS applies
FROM (SELECT arrayJoin(arrayDistinct({runs:Array(String)})) AS run_id) AS r
ORDER BY run_id
