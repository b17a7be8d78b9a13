-- URLs cited as evidence in a run that the run never fetched with a 2xx: what
-- `agenttrace audit --online` checks live.
SELECT DISTINCT ref AS url
FROM claim_evidence
WHERE run_id = $run_id AND kind = 'url' AND problem IS NOT NULL
  AND (starts_with(lower(ref), 'http://') OR starts_with(lower(ref), 'https://'))
ORDER BY url;
