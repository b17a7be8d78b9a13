-- Files recorded during a run: `agenttrace.artifact` span events carrying path, sha256, size and
-- role: written (a file the run created or changed under its working directory), deleted (a file
-- that was there when the run started and is gone; no size or hash), deliverable (a
-- deliverable checked and copied into the artifact store), evidence (a file a claim cited, or a
-- criterion command's output), objective (the objective file as given). In a run recorded by
-- `agenttrace run`, only the supervisor's records say what was written, deleted or delivered: the
-- agent's own artifact events count as evidence at most.
CREATE OR REPLACE VIEW artifacts AS
SELECT
    s.run_id,
    e.Attributes['file.path'] AS path,
    e.Attributes['agenttrace.artifact.sha256'] AS sha256,
    TRY_CAST(e.Attributes['file.size'] AS BIGINT) AS size,
    s.span_id,
    e.Attributes['agenttrace.artifact.role'] AS role,
    e.Attributes['agenttrace.artifact.content_type'] AS content_type,
    e.Timestamp AS recorded_at
FROM spans s, unnest(s.events) AS u(e)
WHERE e.Name = 'agenttrace.artifact'
  AND (s.origin IS DISTINCT FROM 'agent' OR e.Attributes['agenttrace.artifact.role'] = 'evidence');
