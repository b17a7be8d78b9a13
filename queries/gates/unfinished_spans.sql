-- description: Every span ended, none ended after the run did, and every parent named is in the run.
-- severity: error
WITH run AS (
    SELECT root_span_id, ended AS run_end FROM runs WHERE run_id = $run_id
),
run_spans AS (  -- an earlier audit's record is not the agent's work
    SELECT s.* FROM spans s
    WHERE s.run_id = $run_id AND s.attributes['agenttrace.span.type'] IS DISTINCT FROM 'audit'
)
SELECT
    CASE
        WHEN NOT s.ended THEN 'span `' || s.name || '` started and never ended'
        WHEN s.end_time > r.run_end + INTERVAL 1 SECOND THEN 'span `' || s.name || '` ended after the run did'
        ELSE 'span `' || s.name || '` names a parent (' || s.parent_span_id || ') that is not in the run'
    END AS reason,
    s.span_id,
    s.name,
    s.parent_span_id
FROM run_spans s, run r
WHERE (NOT s.ended AND s.span_id <> r.root_span_id)
   OR (s.ended AND r.run_end IS NOT NULL AND s.end_time > r.run_end + INTERVAL 1 SECOND)
   OR (s.parent_span_id IS NOT NULL AND s.span_id <> r.root_span_id
       AND s.parent_span_id NOT IN (SELECT span_id FROM run_spans))
ORDER BY s.start_time, s.span_id;
