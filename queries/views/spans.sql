-- One row per span. A span's `start` record and its `end` record (and any duplicate delivered
-- twice) become one row; `ended` says whether an end record exists. Times are UTC.
-- `origin`: `supervisor` or `agent` in a run recorded by `agenttrace run` (see raw.sql), else NULL.
-- When the agent sends records under a span id the supervisor wrote (a forged end of the run's
-- root, say), the supervisor's records win.
CREATE OR REPLACE VIEW spans AS
WITH ranked AS (
    SELECT
        *,
        bool_or(RecordType = 'end') OVER (PARTITION BY RunId, TraceId, SpanId, _Origin IS DISTINCT FROM 'agent') AS _ended,
        row_number() OVER (
            PARTITION BY RunId, TraceId, SpanId
            ORDER BY _Origin IS DISTINCT FROM 'agent' DESC, (RecordType = 'end') DESC, Timestamp
        ) AS _rank
    FROM raw_spans
)
SELECT
    RunId AS run_id,
    TraceId AS trace_id,
    SpanId AS span_id,
    nullif(ParentSpanId, '') AS parent_span_id,
    SpanName AS name,
    SpanKind AS kind,
    Timestamp AS start_time,
    CASE WHEN _ended THEN Timestamp + to_microseconds(Duration // 1000) END AS end_time,
    StatusCode AS status_code,
    nullif(StatusMessage, '') AS status_message,
    SpanAttributes AS attributes,
    _ended AS ended,
    CASE WHEN _ended THEN Duration / 1e6 END AS duration_ms,
    ServiceName AS service_name,
    ResourceAttributes AS resource_attributes,
    ScopeName AS scope_name,
    Events AS events,
    Links AS links,
    _Origin AS origin
FROM ranked
WHERE _rank = 1;
