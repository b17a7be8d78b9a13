-- `agenttrace export`: the supervisor's audits of the run (`agenttrace audit` spans), with their
-- times in ns and the state each decided.
SELECT
    span_id,
    name,
    attributes['agenttrace.audit.state'] AS state,
    epoch_ns(start_time) AS start_ns,
    CASE WHEN ended THEN epoch_ns(end_time) END AS end_ns,
    ended
FROM spans
WHERE run_id = $run_id AND attributes['agenttrace.span.type'] = 'audit' AND origin IS DISTINCT FROM 'agent'
ORDER BY start_time, span_id;
