-- `agenttrace export`: the supervisor's verification checks (deliverables, criteria, evidence),
-- with their times in ns, for a timeline's verification track.
SELECT
    span_id,
    name,
    type,
    id,
    path,
    passed,
    exit_code,
    skipped,
    epoch_ns(start_time) AS start_ns,
    CASE WHEN ended THEN epoch_ns(end_time) END AS end_ns,
    ended
FROM verifications
WHERE run_id = $run_id
ORDER BY start_time, span_id;
