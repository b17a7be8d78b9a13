-- One row per OTLP log record (what CLI coding agents report as events: tool decisions and results,
-- API requests with tokens and cost), from `agenttrace serve` or `agenttrace run`'s receiver.
-- Times are UTC. `time` is the record's time, else the time it was observed (as the OTel Collector's
-- ClickHouse exporter stores it); `observed_time` is NULL when the sender set none. `trace_id` and
-- `span_id` are NULL when the record names no span. `body` is the body as text (a map or an array
-- as JSON). `event_name` is the record's `event.name` attribute, else its event name field (when
-- both are set the attribute wins: Codex 0.17x puts its source location, such as `event
-- otel/src/events/session_telemetry.rs:1123`, in the field and the name in the attribute).
-- `severity_number` follows OTel (1-4 TRACE, 5-8 DEBUG, 9-12 INFO, 13-16 WARN, 17-20 ERROR,
-- 21-24 FATAL; 0 unset). `origin`: as in `spans`. A record read twice (from the spool and from the
-- part it was sealed into meanwhile) is one row.
CREATE OR REPLACE VIEW logs AS
SELECT DISTINCT ON (RunId, Timestamp, ObservedTimestamp, TraceId, SpanId, SeverityNumber, Body, EventName, hash(LogAttributes), hash(ResourceAttributes))
    RunId AS run_id,
    Timestamp AS time,
    ObservedTimestamp AS observed_time,
    nullif(TraceId, '') AS trace_id,
    nullif(SpanId, '') AS span_id,
    SeverityText AS severity_text,
    SeverityNumber AS severity_number,
    Body AS body,
    LogAttributes AS attributes,
    ResourceAttributes AS resource_attributes,
    ScopeName AS scope_name,
    ScopeVersion AS scope_version,
    ServiceName AS service_name,
    coalesce(nullif(LogAttributes['event.name'], ''), nullif(EventName, '')) AS event_name,
    TraceFlags AS trace_flags,
    _Origin AS origin
FROM raw_logs;
