-- The files a run's claims cited as evidence, with their hash when claimed: the verification
-- phase hashes each again at the end of the run.
SELECT DISTINCT e ->> 'path' AS path, e ->> 'sha256' AS sha256
FROM (
    SELECT unnest(CAST(attributes['agenttrace.claim.evidence'] AS JSON[])) AS e
    FROM spans
    WHERE run_id = $run_id AND attributes['agenttrace.span.type'] = 'claim'
)
WHERE e ->> 'kind' = 'file' AND e ->> 'path' IS NOT NULL AND e ->> 'sha256' IS NOT NULL
ORDER BY path;
