-- `agenttrace diff`: the files one run wrote or deleted, as its artifact manifest records them
-- (role `written` or `deleted`), one row per path: the latest record of it.
SELECT path, role, sha256, size
FROM artifacts
WHERE run_id = $run_id AND role IN ('written', 'deleted') AND path IS NOT NULL
QUALIFY row_number() OVER (PARTITION BY path ORDER BY recorded_at DESC, role) = 1
ORDER BY path;
