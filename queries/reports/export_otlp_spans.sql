-- `agenttrace export --format otlp-json`: every span of the run as the `spans` view has it (one
-- row per span, the supervisor's record where the agent sent one under the same id), with what an
-- OTLP span needs that the view leaves out: the trace state, the scope version, the duration in ns
-- (the view's end time is in microseconds) and the start in ns.
WITH raw AS (
    SELECT
        TraceId,
        SpanId,
        _Origin,
        any_value(TraceState) AS trace_state,
        any_value(ScopeVersion) AS scope_version,
        max(Duration) FILTER (WHERE RecordType = 'end') AS duration_ns
    FROM raw_spans
    WHERE RunId = $run_id
    GROUP BY TraceId, SpanId, _Origin
)
SELECT
    s.trace_id,
    s.span_id,
    s.parent_span_id,
    r.trace_state,
    s.name,
    s.kind,
    s.service_name,
    s.resource_attributes,
    s.scope_name,
    r.scope_version,
    s.attributes,
    epoch_ns(s.start_time) AS start_ns,
    CASE WHEN s.ended THEN r.duration_ns END AS duration_ns,
    s.ended,
    s.status_code,
    s.status_message,
    [{'time_ns': epoch_ns(e.Timestamp), 'name': e.Name, 'attributes': e.Attributes}
        FOR e IN coalesce(s.events, [])] AS events,
    s.links
FROM spans s
LEFT JOIN raw r
  ON r.TraceId = s.trace_id AND r.SpanId = s.span_id AND r._Origin IS NOT DISTINCT FROM s.origin
WHERE s.run_id = $run_id
ORDER BY s.start_time, s.span_id;
