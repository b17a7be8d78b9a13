-- description: Every deliverable the objective names exists at the end of the run, is not empty, has at least its min_bytes, and was written during the run.
-- severity: error
-- applies: SELECT coalesce(json_array_length(objective_json, '$.deliverables'), 0) > 0 FROM runs WHERE run_id = $run_id
--
-- ClickHouse variant of queries/gates/deliverables.sql (same columns, same reasons). Why
-- hand-written: `unnest(json_extract(j, '$.deliverables[*]'))` is ARRAY JOIN over
-- JSONExtractArrayRaw; `->>` keeps DuckDB's NULL; TRY_CAST(text AS BIGINT) is written out as
-- DuckDB parses text (`12.5` -> 13); NOT IN keeps SQL's NULL rule.
WITH
    (j, k) -> if(isValidJSON(j) AND JSONHas(j, k) AND JSONType(j, k) != 'Null', JSONExtractString(j, k), NULL) AS json_text,
    j -> if(isValidJSON(j) AND JSONType(j) != 'Null', JSONExtractString(j), NULL) AS json_value_text,
    s -> multiIf(
        match(trimBoth(s), '^[+-]?[0-9]+$'), toInt64OrNull(trimBoth(s)),
        abs(toFloat64OrNull(trimBoth(s))) < 9223372036854775807,
            toInt64(sign(toFloat64OrNull(trimBoth(s))) * floor(abs(toFloat64OrNull(trimBoth(s))) + 0.5)),
        NULL) AS try_bigint,
wanted AS (
    SELECT coalesce(json_text(d, 'path'), json_value_text(d)) AS path, try_bigint(json_text(d, 'min_bytes')) AS min_bytes
    FROM runs
    ARRAY JOIN JSONExtractArrayRaw(ifNull(objective_json, ''), 'deliverables') AS d
    WHERE run_id = {run_id:String}
),
checked AS (
    SELECT * FROM verifications WHERE run_id = {run_id:String} AND type = 'deliverable'
    QUALIFY row_number() OVER (PARTITION BY path ORDER BY end_time DESC) = 1
),
written AS (
    SELECT DISTINCT path FROM artifacts WHERE run_id = {run_id:String} AND role = 'written'
)
SELECT
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
LEFT JOIN checked AS c ON c.path = w.path
WHERE c.span_id IS NULL
   OR c.error IS NOT NULL
   OR NOT coalesce(c.found, false)
   OR c.size IS NULL
   OR c.size = 0
   OR c.size < coalesce(w.min_bytes, 0)
   OR NOT coalesce(c.passed, false)
   OR NOT EXISTS (SELECT 1 FROM written)
   OR (w.path NOT IN (SELECT path FROM written) AND NOT EXISTS (SELECT 1 FROM written WHERE path IS NULL))
ORDER BY w.path
