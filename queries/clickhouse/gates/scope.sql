-- description: The agent wrote and deleted files only inside the objective's scope (globs relative to the working directory).
-- severity: error
-- applies: SELECT json_extract(objective_json, '$.scope') IS NOT NULL AND json_type(objective_json, '$.scope') = 'ARRAY' FROM runs WHERE run_id = $run_id
--
-- ClickHouse variant of queries/gates/scope.sql (same columns, same reasons). Why hand-written:
-- a ClickHouse array cannot be NULL, and DuckDB's NULL `patterns` (no scope_regex) is its own
-- case here (`has_patterns`); CAST(json AS VARCHAR[]) is JSONExtractArrayRaw; list_filter with
-- regexp_full_match is arrayExists with match on `(?-s)^(?:p)$` (ClickHouse's `.` matches a
-- newline unless `(?-s)`; DuckDB's does not); array_to_string skips NULLs as DuckDB's does.
WITH
    (j, k) -> arrayMap(e -> if(JSONType(e) = 'Null', NULL, JSONExtractString(e)), JSONExtractArrayRaw(ifNull(j, ''), k)) AS json_strings,
allowed AS (
    SELECT
        ifNull(isValidJSON(objective_json) AND JSONType(objective_json, 'scope_regex') = 'Array', false) AS has_patterns,
        arrayMap(p -> assumeNotNull(p), arrayFilter(p -> p IS NOT NULL, json_strings(objective_json, 'scope_regex'))) AS patterns,
        if(isValidJSON(objective_json) AND JSONType(objective_json, 'scope') = 'Array',
           arrayStringConcat(arrayMap(g -> assumeNotNull(g), arrayFilter(g -> g IS NOT NULL, json_strings(objective_json, 'scope'))), ', '),
           NULL) AS globs
    FROM runs
    WHERE run_id = {run_id:String}
)
SELECT * FROM (
SELECT
    concat('file ', a.path, ' was ', if(a.role = 'deleted', 'deleted', 'written'),
        ' outside the scope (allowed: ', coalesce(nullIf(x.globs, ''), 'nothing'), ')') AS reason,
    a.span_id AS span_id,
    a.path AS path,
    a.sha256 AS sha256,
    a.size AS size
FROM artifacts AS a CROSS JOIN allowed AS x
WHERE a.run_id = {run_id:String}
  AND a.role IN ('written', 'deleted')
  AND x.has_patterns
  AND NOT arrayExists(p -> ifNull(match(a.path, concat('(?-s)^(?:', p, ')$')), false), x.patterns)
UNION ALL
SELECT
    'the objective''s scope cannot be checked: it has no scope_regex (write the objective with agenttrace)',
    NULL, NULL, NULL, NULL
FROM allowed AS x
WHERE NOT x.has_patterns
)
ORDER BY path NULLS FIRST
