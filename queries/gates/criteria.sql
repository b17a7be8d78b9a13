-- description: Every criterion of the objective was verified and passed: each `covers` item appears in its deliverable, each `command` exited 0 within its timeout.
-- severity: error
-- applies: SELECT coalesce(json_array_length(objective_json, '$.criteria'), 0) > 0 FROM runs WHERE run_id = $run_id
WITH wanted AS (
    SELECT c ->> 'id' AS id, c ->> 'kind' AS kind, c ->> 'in' AS in_file, c ->> 'command' AS command, n
    FROM (
        SELECT unnest(json_extract(objective_json, '$.criteria[*]')) AS c,
               generate_subscripts(json_extract(objective_json, '$.criteria[*]'), 1) AS n
        FROM runs WHERE run_id = $run_id
    )
),
checked AS (
    SELECT * FROM verifications WHERE run_id = $run_id AND type = 'criterion'
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY end_time DESC) = 1
),
missing_items AS (
    SELECT c.id, unnest(c.missing) AS item, generate_subscripts(c.missing, 1) AS position
    FROM checked c
    WHERE c.kind = 'covers'
)
-- not verified at all
SELECT
    'criterion ' || w.id || ' was not verified: the run ended before its verification' AS reason,
    NULL AS span_id, w.id AS criterion, NULL AS item, NULL AS exit_code, NULL AS output_sha256,
    w.n AS _n, 0 AS _position
FROM wanted w
WHERE w.id NOT IN (SELECT id FROM checked)
UNION ALL
-- a covers criterion: one row per item not covered
SELECT
    'criterion ' || w.id || ': ' || to_json(m.item)::VARCHAR || ' is not covered in ' || w.in_file
        || CASE WHEN c.error IS NOT NULL THEN ' (' || c.error || ')' ELSE '' END,
    c.span_id, w.id, m.item, NULL, NULL, w.n, m.position
FROM wanted w
JOIN checked c ON c.id = w.id
JOIN missing_items m ON m.id = w.id
UNION ALL
-- a command criterion that was skipped, failed or timed out
SELECT
    'criterion ' || w.id || ': `' || w.command || '` '
        || CASE
               WHEN c.skipped IS NOT NULL THEN 'was not run: ' || c.skipped
               WHEN c.timed_out THEN 'did not finish within ' || c.timeout_s || ' s'
               ELSE 'exited with code ' || coalesce(c.exit_code::VARCHAR, '?')
           END
        || CASE WHEN c.output_sha256 IS NOT NULL THEN ' (its output is evidence sha256 ' || left(c.output_sha256, 12) || '…)' ELSE '' END,
    c.span_id, w.id, NULL, c.exit_code, c.output_sha256, w.n, 0
FROM wanted w
JOIN checked c ON c.id = w.id
WHERE w.kind = 'command' AND NOT coalesce(c.passed, false)
ORDER BY _n, _position;
