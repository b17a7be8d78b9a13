-- `agenttrace report`: the files of the run's artifact manifest (deliverables, evidence, files
-- written or deleted), at most $max_files of them (`of`: how many in all).
SELECT path, sha256, size, role, span_id, recorded_at, count(*) OVER () AS "of"
FROM artifacts
WHERE run_id = $run_id
QUALIFY row_number() OVER (ORDER BY path, role, recorded_at) <= $max_files
ORDER BY path, role, recorded_at;
