-- description: Every criterion of the objective was verified and passed: each `covers` item appears in its deliverable, each `command` exited 0 within its timeout.
-- severity: error
-- applies: SELECT coalesce(json_array_length(objective_json, '$.criteria'), 0) > 0 FROM runs WHERE run_id = $run_id
--
-- ClickHouse variant of queries/gates/criteria.sql (same columns, same reasons). Why hand-written:
-- `unnest(json_extract(j, '$.criteria[*]'))` with `generate_subscripts` is ARRAY JOIN over
-- JSONExtractArrayRaw with arrayEnumerate; `unnest(list)` is ARRAY JOIN; `->>` keeps DuckDB's NULL;
-- to_json is toJSONString less the escapes DuckDB does not write (`\/`, U+2028, U+2029); a DOUBLE
-- prints as DuckDB prints it (`30.0`); NOT IN keeps SQL's NULL rule (a NULL id in `checked` means
-- no row, as in DuckDB).
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
    SELECT json_text(c, 'id') AS id, json_text(c, 'kind') AS kind, json_text(c, 'in') AS in_file,
           json_text(c, 'command') AS command, toInt64(n) AS n
    FROM runs
    ARRAY JOIN JSONExtractArrayRaw(ifNull(objective_json, ''), 'criteria') AS c,
               arrayEnumerate(JSONExtractArrayRaw(ifNull(objective_json, ''), 'criteria')) AS n
    WHERE run_id = {run_id:String}
),
checked AS (
    SELECT * FROM verifications WHERE run_id = {run_id:String} AND type = 'criterion'
    QUALIFY row_number() OVER (PARTITION BY id ORDER BY end_time DESC) = 1
),
missing_items AS (
    SELECT c.id AS id, item, toInt64(position) AS position
    FROM checked AS c
    ARRAY JOIN c.missing AS item, arrayEnumerate(c.missing) AS position
    WHERE c.kind = 'covers'
)
SELECT * FROM (
-- not verified at all
SELECT
    concat('criterion ', w.id, ' was not verified: the run ended before its verification') AS reason,
    CAST(NULL, 'Nullable(String)') AS span_id, w.id AS criterion, CAST(NULL, 'Nullable(String)') AS item,
    CAST(NULL, 'Nullable(Int32)') AS exit_code, CAST(NULL, 'Nullable(String)') AS output_sha256,
    w.n AS _n, toInt64(0) AS _position
FROM wanted AS w
WHERE NOT EXISTS (SELECT 1 FROM checked)
   OR (w.id NOT IN (SELECT id FROM checked) AND NOT EXISTS (SELECT 1 FROM checked WHERE id IS NULL))
UNION ALL
-- a covers criterion: one row per item not covered
SELECT
    concat('criterion ', w.id, ': ', duck_to_json(m.item), ' is not covered in ', w.in_file,
           if(c.error IS NOT NULL, concat(' (', c.error, ')'), '')),
    c.span_id, w.id, m.item, NULL, NULL, w.n, m.position
FROM wanted AS w
INNER JOIN checked AS c ON c.id = w.id
INNER JOIN missing_items AS m ON m.id = w.id
UNION ALL
-- a command criterion that was skipped, failed or timed out
SELECT
    concat('criterion ', w.id, ': `', w.command, '` ',
        multiIf(
            c.skipped IS NOT NULL, concat('was not run: ', c.skipped),
            c.timed_out, concat('did not finish within ', duck_double(c.timeout_s), ' s'),
            concat('exited with code ', coalesce(toString(c.exit_code), '?'))),
        if(c.output_sha256 IS NOT NULL, concat(' (its output is evidence sha256 ', leftUTF8(c.output_sha256, 12), '…)'), '')),
    c.span_id, w.id, NULL, c.exit_code, c.output_sha256, w.n, 0
FROM wanted AS w
INNER JOIN checked AS c ON c.id = w.id
WHERE w.kind = 'command' AND NOT coalesce(c.passed, false)
)
ORDER BY _n, _position
