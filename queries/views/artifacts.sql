-- Files recorded during a run: `agenttrace.artifact` span events carrying path, sha256, size and
-- role (deliverable | evidence | written). Empty until something records artifacts.
CREATE OR REPLACE VIEW artifacts AS
SELECT
    s.run_id,
    e.Attributes['file.path'] AS path,
    e.Attributes['agenttrace.artifact.sha256'] AS sha256,
    TRY_CAST(e.Attributes['file.size'] AS BIGINT) AS size,
    s.span_id,
    e.Attributes['agenttrace.artifact.role'] AS role,
    e.Timestamp AS recorded_at
FROM spans s, unnest(s.events) AS u(e)
WHERE e.Name = 'agenttrace.artifact';
