-- description: Every claim has evidence, and all of it resolves: files unchanged since the claim, URLs fetched with a 2xx, spans that exist and succeeded.
-- severity: error
-- applies: SELECT count(*) > 0 FROM claims WHERE run_id = $run_id
--
-- ClickHouse variant of queries/gates/evidence.sql (same columns, same reasons). Why hand-written:
-- to_json is toJSONString less the escapes DuckDB does not write (`\/`, U+2028, U+2029); and a
-- ClickHouse array cannot be NULL: the claims view's `evidence` is [] where DuckDB's is NULL (an
-- evidence attribute that is not a JSON list), which `evidence_json IS NULL` tells apart.
WITH
    -- DuckDB's to_json of a VARCHAR
    s -> if(s IS NULL, NULL, concat('"', arrayStringConcat(arrayMap(p -> arrayStringConcat(arrayMap(
            q -> replaceAll(substring(toJSONString(q), 2, length(toJSONString(q)) - 2), '\\/', '/'),
            splitByString('\xE2\x80\xA9', p)), '\xE2\x80\xA9'), splitByString('\xE2\x80\xA8', assumeNotNull(s))), '\xE2\x80\xA8'), '"')) AS duck_to_json
SELECT * FROM (
SELECT
    concat('claim ', duck_to_json(text), ' has no evidence') AS reason,
    span_id,
    text AS claim,
    CAST(NULL, 'Nullable(String)') AS evidence,
    step,
    claimed_at AS _claimed_at,
    toInt64(0) AS _position
FROM claims
WHERE run_id = {run_id:String} AND length(evidence) = 0 AND evidence_json IS NOT NULL
UNION ALL
SELECT
    concat('claim ', duck_to_json(text), ': its evidence record is not a JSON list of evidence, so it cannot be checked'),
    span_id, text, NULL, step, claimed_at, 0
FROM claims
WHERE run_id = {run_id:String} AND evidence_json IS NULL
UNION ALL
SELECT
    concat('claim ', duck_to_json(claim), ': ', problem),
    claim_span_id,
    claim,
    ref,
    step,
    claimed_at,
    position
FROM claim_evidence
WHERE run_id = {run_id:String} AND problem IS NOT NULL
)
ORDER BY _claimed_at, span_id, _position
