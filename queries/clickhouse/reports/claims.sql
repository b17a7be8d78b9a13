-- ClickHouse variant of queries/reports/claims.sql (same meaning, same columns): DuckDB's
-- `list({...} ORDER BY position)` of structs is a groupArray of named tuples sorted by position here,
-- joined per claim (a claim without evidence gets []), and $step may be NULL (all the claims).
-- The claims of a run (all of them, or those made during step $step), each with its evidence as a
-- list of {kind, ref, sha256, resolved, problem}: for `agenttrace show` and `agenttrace step`.
SELECT
    c.span_id AS span_id,
    c.text AS text,
    c.step AS step,
    c.claimed_at AS claimed_at,
    ev.evidence AS evidence
FROM claims AS c
LEFT JOIN (
    SELECT
        e.run_id AS run_id,
        e.claim_span_id AS claim_span_id,
        arrayMap(p -> p.2, arraySort(p -> p.1, groupArray((
            e.position,
            CAST((e.kind, e.ref, e.sha256, e.size, e.problem IS NULL, e.problem),
                 'Tuple(kind Nullable(String), ref Nullable(String), sha256 Nullable(String), size Nullable(Int64), resolved Bool, problem Nullable(String))')
        )))) AS evidence
    FROM claim_evidence AS e
    WHERE e.run_id = {run_id:String}
    GROUP BY e.run_id, e.claim_span_id
) AS ev ON ev.run_id = c.run_id AND ev.claim_span_id = c.span_id
WHERE c.run_id = {run_id:String}
  AND ({step:Nullable(Int64)} IS NULL OR c.step = {step:Nullable(Int64)})
ORDER BY c.claimed_at, c.span_id
