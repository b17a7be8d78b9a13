-- All-runs form of queries/clickhouse/gates/criteria.sql: the same rows for every run in {runs:Array(String)},
-- first column run_id, ordered by run_id then the per-run gate's ORDER BY. `checked` is per run; its row
-- count and NULL-id count per run stand for the per-run EXISTS tests, and `id NOT IN checked` (SQL's NULL
-- rule: a NULL id is in no set) is an anti-join on (run_id, id).
WITH
    (j, k) -> if(isValidJSON(j) AND JSONHas(j, k) AND JSONType(j, k) != 'Null', JSONExtractString(j, k), NULL) AS json_text,
    -- DuckDB's to_json of a VARCHAR
    s -> if(s IS NULL, NULL, concat('"', arrayStringConcat(arrayMap(p -> arrayStringConcat(arrayMap(
            q -> replaceAll(substring(toJSONString(q), 2, length(toJSONString(q)) - 2), '\\/', '/'),
            splitByString('\xE2\x80\xA9', p)), '\xE2\x80\xA9'), splitByString('\xE2\x80\xA8', assumeNotNull(s))), '\xE2\x80\xA8'), '"')) AS duck_to_json,
    ((d, e) -> if(e >= -4 AND e < 16,
        if(e >= 0,
           if(length(d) <= e + 1, concat(d, repeat('0', toUInt64(e + 1 - length(d))), '.0'),
              concat(substring(d, 1, e + 1), '.', substring(d, e + 2))),
           concat('0.', repeat('0', toUInt64(-e - 1)), d)),
        concat(substring(d, 1, 1), if(length(d) > 1, concat('.', substring(d, 2)), ''),
               'e', if(e < 0, '-', '+'), if(abs(e) < 10, '0', ''), toString(abs(e))))) AS _duck_fixed,
    ((m, x) -> _duck_fixed(
        replaceRegexpOne(replaceRegexpOne(replaceOne(m, '.', ''), '^0+', ''), '0+$', ''),
        length(splitByChar('.', m)[1]) + x - 1
          - (length(replaceOne(m, '.', '')) - length(replaceRegexpOne(replaceOne(m, '.', ''), '^0+', ''))))) AS _duck_digits,
    -- DuckDB's text of a DOUBLE: shortest digits, fixed for 1e-4 <= |x| < 1e16 (always a `.`), else d.ddde+XX
    (v -> multiIf(isNaN(v), 'nan', isInfinite(v), if(v > 0, 'inf', '-inf'),
        concat(if(startsWith(toString(v), '-'), '-', ''),
               if(v = 0, '0.0', _duck_digits(regexpExtract(toString(abs(v)), '^([0-9.]+)', 1),
                                             toInt32OrZero(regexpExtract(toString(abs(v)), 'e([-+]?[0-9]+)$', 1))))))) AS duck_double,
wanted AS (
    SELECT run_id, json_text(c, 'id') AS id, json_text(c, 'kind') AS kind, json_text(c, 'in') AS in_file,
           json_text(c, 'command') AS command, toInt64(n) AS n
    FROM runs
    ARRAY JOIN JSONExtractArrayRaw(ifNull(objective_json, ''), 'criteria') AS c,
               arrayEnumerate(JSONExtractArrayRaw(ifNull(objective_json, ''), 'criteria')) AS n
    WHERE has({runs:Array(String)}, run_id)
),
checked AS (
    SELECT * FROM verifications WHERE has({runs:Array(String)}, run_id) AND type = 'criterion'
    QUALIFY row_number() OVER (PARTITION BY run_id, id ORDER BY end_time DESC) = 1
),
checked_runs AS (
    SELECT run_id, count() AS n_checked, countIf(id IS NULL) AS n_null FROM checked GROUP BY run_id
),
checked_ids AS (
    SELECT DISTINCT run_id, id, true AS present FROM checked WHERE id IS NOT NULL
),
missing_items AS (
    SELECT c.run_id AS run_id, c.id AS id, item, toInt64(position) AS position
    FROM checked AS c
    ARRAY JOIN c.missing AS item, arrayEnumerate(c.missing) AS position
    WHERE c.kind = 'covers'
)
SELECT run_id, reason, span_id, criterion, item, exit_code, output_sha256, _n, _position FROM (
-- not verified at all
SELECT
    w.run_id AS run_id,
    concat('criterion ', w.id, ' was not verified: the run ended before its verification') AS reason,
    CAST(NULL, 'Nullable(String)') AS span_id, w.id AS criterion, CAST(NULL, 'Nullable(String)') AS item,
    CAST(NULL, 'Nullable(Int32)') AS exit_code, CAST(NULL, 'Nullable(String)') AS output_sha256,
    w.n AS _n, toInt64(0) AS _position
FROM wanted AS w
LEFT JOIN checked_runs AS cr ON cr.run_id = w.run_id
LEFT JOIN checked_ids AS ci ON ci.run_id = w.run_id AND ci.id = w.id
WHERE coalesce(cr.n_checked, 0) = 0
   OR (w.id IS NOT NULL AND ci.present IS NULL AND coalesce(cr.n_null, 0) = 0)
UNION ALL
-- a covers criterion: one row per item not covered
SELECT
    w.run_id,
    concat('criterion ', w.id, ': ', duck_to_json(m.item), ' is not covered in ', w.in_file,
           if(c.error IS NOT NULL, concat(' (', c.error, ')'), '')),
    c.span_id, w.id, m.item, NULL, NULL, w.n, m.position
FROM wanted AS w
INNER JOIN checked AS c ON c.run_id = w.run_id AND c.id = w.id
INNER JOIN missing_items AS m ON m.run_id = w.run_id AND m.id = w.id
UNION ALL
-- a command criterion that was skipped, failed or timed out
SELECT
    w.run_id,
    concat('criterion ', w.id, ': `', w.command, '` ',
        multiIf(
            c.skipped IS NOT NULL, concat('was not run: ', c.skipped),
            c.timed_out, concat('did not finish within ', duck_double(c.timeout_s), ' s'),
            concat('exited with code ', coalesce(toString(c.exit_code), '?'))),
        if(c.output_sha256 IS NOT NULL, concat(' (its output is evidence sha256 ', leftUTF8(c.output_sha256, 12), '…)'), '')),
    c.span_id, w.id, NULL, c.exit_code, c.output_sha256, w.n, 0
FROM wanted AS w
INNER JOIN checked AS c ON c.run_id = w.run_id AND c.id = w.id
WHERE w.kind = 'command' AND NOT coalesce(c.passed, false)
)
ORDER BY run_id, _n, _position
