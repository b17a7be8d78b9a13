-- `agenttrace export --format otlp-json`: the run's OTLP log records, as stored (times in ns).
SELECT
    epoch_ns(Timestamp) AS time_ns,
    epoch_ns(ObservedTimestamp) AS observed_ns,
    TraceId AS trace_id,
    SpanId AS span_id,
    TraceFlags AS flags,
    SeverityText AS severity_text,
    SeverityNumber AS severity_number,
    ServiceName AS service_name,
    Body AS body,
    ResourceAttributes AS resource_attributes,
    ScopeName AS scope_name,
    ScopeVersion AS scope_version,
    LogAttributes AS attributes,
    EventName AS event_name
FROM raw_logs
WHERE RunId = $run_id
ORDER BY Timestamp;
