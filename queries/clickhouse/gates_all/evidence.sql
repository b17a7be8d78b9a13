-- All-runs form of queries/clickhouse/gates/evidence.sql: the same rows for every run in {runs:Array(String)},
-- first column run_id, ordered by run_id then the per-run gate's ORDER BY.
WITH
    -- DuckDB's to_json of a VARCHAR
    s -> if(s IS NULL, NULL, concat('"', arrayStringConcat(arrayMap(p -> arrayStringConcat(arrayMap(
            q -> replaceAll(substring(toJSONString(q), 2, length(toJSONString(q)) - 2), '\\/', '/'),
            splitByString('\xE2\x80\xA9', p)), '\xE2\x80\xA9'), splitByString('\xE2\x80\xA8', assumeNotNull(s))), '\xE2\x80\xA8'), '"')) AS duck_to_json
SELECT run_id, reason, span_id, claim, evidence, step, _claimed_at, _position FROM (
SELECT
    run_id,
    concat('claim ', duck_to_json(text), ' has no evidence') AS reason,
    span_id,
    text AS claim,
    CAST(NULL, 'Nullable(String)') AS evidence,
    step,
    claimed_at AS _claimed_at,
    toInt64(0) AS _position
FROM claims
WHERE has({runs:Array(String)}, run_id) AND length(evidence) = 0 AND evidence_json IS NOT NULL
UNION ALL
SELECT
    run_id,
    concat('claim ', duck_to_json(text), ': its evidence record is not a JSON list of evidence, so it cannot be checked'),
    span_id, text, NULL, step, claimed_at, 0
FROM claims
WHERE has({runs:Array(String)}, run_id) AND evidence_json IS NULL
UNION ALL
SELECT
    run_id,
    concat('claim ', duck_to_json(claim), ': ', problem),
    claim_span_id,
    claim,
    ref,
    step,
    claimed_at,
    position
FROM claim_evidence
WHERE has({runs:Array(String)}, run_id) AND problem IS NOT NULL
)
ORDER BY run_id, _claimed_at, span_id, _position
