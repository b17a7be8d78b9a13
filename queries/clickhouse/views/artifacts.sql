-- ClickHouse variant of queries/views/artifacts.sql (same meaning, same columns): a variant because
-- the DuckDB file unnests the span events (`unnest(s.events)`), which is ARRAY JOIN here.
CREATE OR REPLACE VIEW artifacts AS
SELECT
    s.run_id AS run_id,
    e.Attributes['file.path'] AS path,
    e.Attributes['agenttrace.artifact.sha256'] AS sha256,
    CAST(e.Attributes['file.size'], 'Nullable(Int64)') AS size,
    s.span_id AS span_id,
    e.Attributes['agenttrace.artifact.role'] AS role,
    e.Attributes['agenttrace.artifact.content_type'] AS content_type,
    e.Timestamp AS recorded_at
FROM spans AS s
ARRAY JOIN s.events AS e
WHERE e.Name = 'agenttrace.artifact'
  AND (s.origin IS DISTINCT FROM 'agent' OR e.Attributes['agenttrace.artifact.role'] = 'evidence');
