-- All-runs form of exit_status' `-- applies:` (read from `runs`: a row for every run that has one)
SELECT
    run_id,
    toBool(NOT (exit_code IS NULL) OR NOT (signal IS NULL) OR state IN ('timed_out', 'cancelled')) AS applies
FROM runs
WHERE has({runs:Array(String)}, run_id)
ORDER BY run_id
