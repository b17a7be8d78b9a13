-- The claims of a run (all of them, or those made during step $step), each with its evidence as a
-- list of {kind, ref, sha256, resolved, problem}: for `agenttrace show` and `agenttrace step`.
SELECT
    c.span_id,
    c.text,
    c.step,
    c.claimed_at,
    coalesce(
        (SELECT list({'kind': e.kind, 'ref': e.ref, 'sha256': e.sha256, 'size': e.size,
                      'resolved': e.problem IS NULL, 'problem': e.problem} ORDER BY e.position)
           FROM claim_evidence e
          WHERE e.run_id = c.run_id AND e.claim_span_id = c.span_id),
        []) AS evidence
FROM claims c
WHERE c.run_id = $run_id AND (CAST($step AS INTEGER) IS NULL OR c.step = CAST($step AS INTEGER))
ORDER BY c.claimed_at, c.span_id;
