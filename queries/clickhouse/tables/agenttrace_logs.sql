-- agenttrace's own log records (`agenttrace push`): the store's Parquet log schema, type for type,
-- plus `Origin` (as in agenttrace_spans). A run found here is read from here only.
CREATE TABLE IF NOT EXISTS {db}.agenttrace_logs (
    Timestamp DateTime64(9, 'UTC'),
    ObservedTimestamp Nullable(DateTime64(9, 'UTC')),
    TraceId Nullable(String),
    SpanId Nullable(String),
    TraceFlags Nullable(UInt8),
    SeverityText Nullable(String),
    SeverityNumber Nullable(Int32),
    ServiceName Nullable(String),
    Body Nullable(String),
    ResourceAttributes Map(String, Nullable(String)),
    ScopeName Nullable(String),
    ScopeVersion Nullable(String),
    LogAttributes Map(String, Nullable(String)),
    EventName Nullable(String),
    RunId String,
    PushedAt DateTime64(6, 'UTC'),
    Origin Nullable(String)
) ENGINE = MergeTree
ORDER BY (RunId, Timestamp)
