-- agenttrace's own span records (`agenttrace push`, `agenttrace run --push`): the store's Parquet
-- span schema, type for type (`store/schema.py`: the exporter's columns, nullable as in Parquet,
-- plus `RunId` and `RecordType` start|end), and `Origin`: who reported the record of a run recorded
-- by `agenttrace run` (supervisor or agent, from its manifest), NULL otherwise. A run found here is
-- read from here only: its copies in `otel_traces` (forwarded by the agent or a collector) are not
-- read, so what the agent sent there cannot stand in for the supervisor's records.
CREATE TABLE IF NOT EXISTS {db}.agenttrace_spans (
    Timestamp DateTime64(9, 'UTC'),
    TraceId Nullable(String),
    SpanId Nullable(String),
    ParentSpanId Nullable(String),
    TraceState Nullable(String),
    SpanName Nullable(String),
    SpanKind Nullable(String),
    ServiceName Nullable(String),
    ResourceAttributes Map(String, Nullable(String)),
    ScopeName Nullable(String),
    ScopeVersion Nullable(String),
    SpanAttributes Map(String, Nullable(String)),
    Duration Nullable(Int64),
    StatusCode Nullable(String),
    StatusMessage Nullable(String),
    Events Array(Tuple(Timestamp Nullable(DateTime64(9, 'UTC')), Name Nullable(String), Attributes Map(String, Nullable(String)))),
    Links Array(Tuple(TraceId Nullable(String), SpanId Nullable(String), TraceState Nullable(String), Attributes Map(String, Nullable(String)))),
    RunId String,
    PushedAt DateTime64(6, 'UTC'),
    RecordType Nullable(String),
    Origin Nullable(String)
) ENGINE = MergeTree
ORDER BY (RunId, Timestamp)
