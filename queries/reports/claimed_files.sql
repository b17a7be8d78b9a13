-- The files a run's claims cited as evidence, with their hash when claimed: the verification
-- phase hashes each again at the end of the run. Reads the raw records (no merge of start and
-- end records: a claim is recorded whole), so it stays cheap for a run of any size.
SELECT DISTINCT e ->> 'path' AS path, e ->> 'sha256' AS sha256
FROM (
    SELECT unnest(CAST(SpanAttributes['agenttrace.claim.evidence'] AS JSON[])) AS e
    FROM raw_spans
    WHERE RunId = $run_id AND SpanAttributes['agenttrace.span.type'] = 'claim'
)
WHERE e ->> 'kind' = 'file' AND e ->> 'path' IS NOT NULL AND e ->> 'sha256' IS NOT NULL
ORDER BY path;
