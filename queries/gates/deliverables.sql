-- description: Every deliverable the objective names exists at the end of the run, is not empty, has at least its min_bytes, and was written during the run.
-- severity: error
-- applies: SELECT coalesce(json_array_length(objective_json, '$.deliverables'), 0) > 0 FROM runs WHERE run_id = $run_id
WITH wanted AS (
    SELECT d ->> 'path' AS path, TRY_CAST(d ->> 'min_bytes' AS BIGINT) AS min_bytes
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
        WHEN NOT c.found AND c.error IS NOT NULL THEN 'deliverable ' || w.path || ' ' || c.error
        WHEN NOT c.found THEN 'deliverable ' || w.path || ' does not exist'
        WHEN c.size = 0 THEN 'deliverable ' || w.path || ' is empty (0 bytes)'
        WHEN c.size < w.min_bytes THEN
            'deliverable ' || w.path || ' has ' || c.size || ' bytes, fewer than the ' || w.min_bytes || ' the objective asks for'
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
   OR NOT c.found
   OR c.size = 0
   OR c.size < coalesce(w.min_bytes, 0)
   OR w.path NOT IN (SELECT path FROM written)
ORDER BY w.path;
