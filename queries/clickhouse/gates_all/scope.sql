-- All-runs form of queries/clickhouse/gates/scope.sql: the same rows for every run in {runs:Array(String)},
-- first column run_id, ordered by run_id then the per-run gate's ORDER BY. The CROSS JOIN of a run's
-- artifacts with its `allowed` row is a join on run_id.
WITH
    (j, k) -> arrayMap(e -> if(JSONType(e) = 'Null', NULL, JSONExtractString(e)), JSONExtractArrayRaw(ifNull(j, ''), k)) AS json_strings,
allowed AS (
    SELECT
        run_id,
        ifNull(isValidJSON(objective_json) AND JSONType(objective_json, 'scope_regex') = 'Array', false) AS has_patterns,
        arrayMap(p -> assumeNotNull(p), arrayFilter(p -> p IS NOT NULL, json_strings(objective_json, 'scope_regex'))) AS patterns,
        if(isValidJSON(objective_json) AND JSONType(objective_json, 'scope') = 'Array',
           arrayStringConcat(arrayMap(g -> assumeNotNull(g), arrayFilter(g -> g IS NOT NULL, json_strings(objective_json, 'scope'))), ', '),
           NULL) AS globs
    FROM runs
    WHERE has({runs:Array(String)}, run_id)
)
SELECT run_id, reason, span_id, path, sha256, size FROM (
SELECT
    a.run_id AS run_id,
    concat('file ', a.path, ' was ', if(a.role = 'deleted', 'deleted', 'written'),
        ' outside the scope (allowed: ', coalesce(nullIf(x.globs, ''), 'nothing'), ')') AS reason,
    a.span_id AS span_id,
    a.path AS path,
    a.sha256 AS sha256,
    a.size AS size
FROM artifacts AS a INNER JOIN allowed AS x ON x.run_id = a.run_id
WHERE has({runs:Array(String)}, a.run_id)
  AND a.role IN ('written', 'deleted')
  AND x.has_patterns
  AND NOT arrayExists(p -> ifNull(match(a.path, concat('(?-s)^(?:', p, ')$')), false), x.patterns)
UNION ALL
SELECT
    x.run_id,
    'the objective''s scope cannot be checked: it has no scope_regex (write the objective with agenttrace)',
    NULL, NULL, NULL, NULL
FROM allowed AS x
WHERE NOT x.has_patterns
)
ORDER BY run_id, path NULLS FIRST
