-- description: Every span ended, none ended after the run did, and every parent named is in the run.
-- severity: error
--
-- A parent named but never sent is a span the agent left open when its telemetry stopped, so it is
-- reported like a span that never ended; except where the agent is one known to leave its session
-- spans open at a clean exit (agent_unsent_parents), it exited 0 and every span under the parent
-- ended: then the parent held no work the record lacks.
WITH run AS (
    SELECT root_span_id, ended AS run_end, exit_code FROM runs WHERE run_id = $run_id
),
run_spans AS (  -- an earlier audit's record is not the agent's work
    SELECT s.* FROM spans s
    WHERE s.run_id = $run_id AND s.attributes['agenttrace.span.type'] IS DISTINCT FROM 'audit'
),
left_open_at_exit AS (
    SELECT c.parent_span_id
    FROM run_spans c
    LEFT JOIN agent_unsent_parents a ON c.service_name LIKE a.service_like
    WHERE c.parent_span_id IS NOT NULL
    GROUP BY c.parent_span_id
    HAVING bool_and(c.ended) AND bool_and(a.service_like IS NOT NULL)
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
       AND s.parent_span_id NOT IN (SELECT span_id FROM run_spans)
       AND NOT (coalesce(r.exit_code = 0, false)
                AND s.parent_span_id IN (SELECT parent_span_id FROM left_open_at_exit)))
ORDER BY s.start_time, s.span_id;
