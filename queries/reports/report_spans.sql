-- `agenttrace report`: the spans a gate's violation names, for those the page shows nowhere else
-- (the run's root span, a wrapper span): name, times, status, origin.
SELECT span_id, parent_span_id, name, start_time, end_time, duration_ms, status_code, status_message,
       ended, origin
FROM spans
WHERE run_id = $run_id AND list_contains($span_ids, span_id)
ORDER BY start_time, span_id;
