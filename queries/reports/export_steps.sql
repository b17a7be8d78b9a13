-- `agenttrace export`: the agent's steps (not the verification phase: that is the supervisor's,
-- `export_verifications`), with their times in ns, for a timeline's slices.
SELECT
    step,
    kind,
    name,
    span_id,
    epoch_ns(start_time) AS start_ns,
    CASE WHEN ended THEN epoch_ns(end_time) END AS end_ns,
    ended,
    status_code,
    model,
    tool_name,
    finish_reason,
    input_tokens,
    output_tokens
FROM steps
WHERE run_id = $run_id AND kind <> 'verify'
ORDER BY step;
