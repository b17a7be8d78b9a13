-- All-runs form of queries/clickhouse/gates/deliverables.sql: the same rows for every run in
-- {runs:Array(String)}, first column run_id, ordered by run_id then the per-run gate's ORDER BY.
-- `written` is per run: its row count and NULL-path count per run stand for the per-run EXISTS tests,
-- and `path NOT IN written` (SQL's NULL rule: a NULL path is in no set) is an anti-join on (run_id, path).
WITH
    (j, k) -> if(isValidJSON(j) AND JSONHas(j, k) AND JSONType(j, k) != 'Null', JSONExtractString(j, k), NULL) AS json_text,
    j -> if(isValidJSON(j) AND JSONType(j) != 'Null', JSONExtractString(j), NULL) AS json_value_text,
    s -> multiIf(
        match(trimBoth(s), '^[+-]?[0-9]+$'), toInt64OrNull(trimBoth(s)),
        abs(toFloat64OrNull(trimBoth(s))) < 9223372036854775807,
            toInt64(sign(toFloat64OrNull(trimBoth(s))) * floor(abs(toFloat64OrNull(trimBoth(s))) + 0.5)),
        NULL) AS try_bigint,
wanted AS (
    SELECT run_id, coalesce(json_text(d, 'path'), json_value_text(d)) AS path, try_bigint(json_text(d, 'min_bytes')) AS min_bytes
    FROM runs
    ARRAY JOIN JSONExtractArrayRaw(ifNull(objective_json, ''), 'deliverables') AS d
    WHERE has({runs:Array(String)}, run_id)
),
checked AS (
    SELECT * FROM verifications WHERE has({runs:Array(String)}, run_id) AND type = 'deliverable'
    QUALIFY row_number() OVER (PARTITION BY run_id, path ORDER BY end_time DESC) = 1
),
written AS (
    SELECT DISTINCT run_id, path FROM artifacts WHERE has({runs:Array(String)}, run_id) AND role = 'written'
),
written_runs AS (
    SELECT run_id, count() AS n, countIf(path IS NULL) AS n_null FROM written GROUP BY run_id
),
written_paths AS (
    SELECT DISTINCT run_id, path, true AS present FROM written WHERE path IS NOT NULL
)
SELECT
    w.run_id AS run_id,
    multiIf(
        c.span_id IS NULL, concat('deliverable ', w.path, ' was not checked: the run ended before its verification'),
        c.error IS NOT NULL, concat('deliverable ', w.path, ' ', c.error),
        NOT coalesce(c.found, false), concat('deliverable ', w.path, ' does not exist'),
        c.size IS NULL, concat('deliverable ', w.path, ' could not be checked (no size was recorded)'),
        c.size = 0, concat('deliverable ', w.path, ' is empty (0 bytes)'),
        c.size < w.min_bytes,
            concat('deliverable ', w.path, ' has ', toString(c.size), ' bytes, fewer than the ', toString(w.min_bytes), ' the objective asks for'),
        NOT coalesce(c.passed, false), concat('deliverable ', w.path, ' failed its check'),
        concat('deliverable ', w.path, ' was not written during the run (it is not in the artifact manifest)')
    ) AS reason,
    c.span_id AS span_id,
    w.path AS path,
    c.size AS size,
    w.min_bytes AS min_bytes,
    c.sha256 AS sha256
FROM wanted AS w
LEFT JOIN checked AS c ON c.run_id = w.run_id AND c.path = w.path
LEFT JOIN written_runs AS wr ON wr.run_id = w.run_id
LEFT JOIN written_paths AS wp ON wp.run_id = w.run_id AND wp.path = w.path
WHERE c.span_id IS NULL
   OR c.error IS NOT NULL
   OR NOT coalesce(c.found, false)
   OR c.size IS NULL
   OR c.size = 0
   OR c.size < coalesce(w.min_bytes, 0)
   OR NOT coalesce(c.passed, false)
   OR coalesce(wr.n, 0) = 0
   OR (w.path IS NOT NULL AND wp.present IS NULL AND coalesce(wr.n_null, 0) = 0)
ORDER BY run_id, path
