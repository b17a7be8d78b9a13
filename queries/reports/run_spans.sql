-- The spans of `agenttrace show`, each with its step number and kind, and its first exception.
SELECT
    s.span_id,
    s.parent_span_id,
    s.name,
    s.start_time,
    s.end_time,
    s.duration_ms,
    s.status_code,
    s.status_message,
    s.ended,
    st.step,
    st.kind AS step_kind,
    st.finish_reason,
    st.tool_call_id,
    (SELECT e.Attributes['exception.type'] || ': ' || e.Attributes['exception.message']
       FROM unnest(s.events) AS u(e) WHERE e.Name = 'exception' LIMIT 1) AS exception,
    TRY_CAST(s.attributes['process.exit.code'] AS INTEGER) AS exit_code,
    s.attributes['agenttrace.claim.text'] AS claim_text
FROM spans s
LEFT JOIN steps st ON st.run_id = s.run_id AND st.span_id = s.span_id
WHERE s.run_id = $run_id
ORDER BY s.start_time, s.span_id;
