-- description: Every deliverable the objective names exists at the end of the run, is not empty, has at least its min_bytes, and was written during the run.
-- severity: error
-- applies: SELECT coalesce(json_array_length(objective_json, '$.deliverables'), 0) > 0 FROM runs WHERE run_id = $run_id
WITH wanted AS (
    SELECT coalesce(d ->> 'path', json_extract_string(d, '$')) AS path, TRY_CAST(d ->> 'min_bytes' AS BIGINT) AS min_bytes
    FROM (SELECT unnest(json_extract(objective_json, '$.deliverables[*]')) AS d FROM runs WHERE run_id = $run_id)
),
checked AS (
    SELECT * FROM verifications WHERE run_id = $run_id AND type = 'deliverable'
    QUALIFY row_number() OVER (PARTITION BY path ORDER BY end_time DESC) = 1
),
written AS (
    SELECT DISTINCT path FROM artifacts WHERE run_id = $run_id AND role = 'written'
)
SELECT
    CASE
        WHEN c.span_id IS NULL THEN 'deliverable ' || w.path || ' was not checked: the run ended before its verification'
        WHEN c.error IS NOT NULL THEN 'deliverable ' || w.path || ' ' || c.error
        WHEN NOT coalesce(c.found, false) THEN 'deliverable ' || w.path || ' does not exist'
        WHEN c.size IS NULL THEN 'deliverable ' || w.path || ' could not be checked (no size was recorded)'
        WHEN c.size = 0 THEN 'deliverable ' || w.path || ' is empty (0 bytes)'
        WHEN c.size < w.min_bytes THEN
            'deliverable ' || w.path || ' has ' || c.size || ' bytes, fewer than the ' || w.min_bytes || ' the objective asks for'
        WHEN NOT coalesce(c.passed, false) THEN 'deliverable ' || w.path || ' failed its check'
        ELSE 'deliverable ' || w.path || ' was not written during the run (it is not in the artifact manifest)'
    END AS reason,
    c.span_id,
    w.path,
    c.size,
    w.min_bytes,
    c.sha256
FROM wanted w
LEFT JOIN checked c ON c.path = w.path
WHERE c.span_id IS NULL
   OR c.error IS NOT NULL
   OR NOT coalesce(c.found, false)
   OR c.size IS NULL
   OR c.size = 0
   OR c.size < coalesce(w.min_bytes, 0)
   OR NOT coalesce(c.passed, false)
   OR w.path NOT IN (SELECT path FROM written)
ORDER BY w.path;
