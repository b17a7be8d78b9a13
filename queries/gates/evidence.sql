-- description: Every claim has evidence, and all of it resolves: files unchanged since the claim, URLs fetched with a 2xx, spans that exist and succeeded.
-- severity: error
-- applies: SELECT count(*) > 0 FROM claims WHERE run_id = $run_id
SELECT
    'claim ' || to_json(text)::VARCHAR || ' has no evidence' AS reason,
    span_id,
    text AS claim,
    NULL AS evidence,
    step,
    claimed_at AS _claimed_at,
    0 AS _position
FROM claims
WHERE run_id = $run_id AND len(evidence) = 0
UNION ALL
SELECT
    'claim ' || to_json(text)::VARCHAR || ': its evidence record is not a JSON list of evidence, so it cannot be checked',
    span_id, text, NULL, step, claimed_at, 0
FROM claims
WHERE run_id = $run_id AND evidence IS NULL
UNION ALL
SELECT
    'claim ' || to_json(claim)::VARCHAR || ': ' || problem,
    claim_span_id,
    claim,
    ref,
    step,
    claimed_at,
    position
FROM claim_evidence
WHERE run_id = $run_id AND problem IS NOT NULL
ORDER BY _claimed_at, claim_span_id, _position;
