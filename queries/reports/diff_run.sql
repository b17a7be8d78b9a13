-- `agenttrace diff`: one run's side. Its summary (state, how its command ended, times), totals
-- over its steps (counts by kind, tokens, cost), the verdict its supervisor recorded (the latest
-- `audit` span the agent did not report, as in the `runs` view: its state, reasons and each
-- gate's status as a JSON object; NULL where none was recorded), whether a supervisor recorded
-- the run (`supervised`: only then is that verdict out of the agent's reach), and the run it
-- replays (`agenttrace.replay_of` on its root span; NULL for a run that replays none).
WITH totals AS (
    SELECT
        count(*) AS steps,
        count(*) FILTER (WHERE kind = 'llm') AS llm_steps,
        count(*) FILTER (WHERE kind = 'tool') AS tool_steps,
        count(*) FILTER (WHERE kind = 'process') AS process_steps,
        sum(input_tokens) AS input_tokens,
        sum(output_tokens) AS output_tokens,
        sum(cost_usd) AS cost_usd
    FROM steps
    WHERE run_id = $run_id
),
recorded AS (
    SELECT attributes['agenttrace.audit.state'] AS audit_state,
           attributes['agenttrace.audit.reasons'] AS audit_reasons,
           attributes['agenttrace.audit.gates'] AS audit_gates
    FROM spans
    WHERE run_id = $run_id AND attributes['agenttrace.span.type'] = 'audit' AND ended
      AND origin IS DISTINCT FROM 'agent'
    ORDER BY end_time DESC, span_id
    LIMIT 1
)
SELECT
    r.run_id, r.name, r.state, r.started, r.ended, r.duration_s, r.agent_duration_s, r.exit_code,
    r.signal, r.command, r.recorded_gates, r.supervised,
    (SELECT s.attributes['agenttrace.replay_of'] FROM spans s
     WHERE s.run_id = r.run_id AND s.span_id = r.root_span_id LIMIT 1) AS replay_of,
    a.audit_state, a.audit_reasons, a.audit_gates,
    t.*
FROM runs r
CROSS JOIN totals t
LEFT JOIN recorded a ON true
WHERE r.run_id = $run_id;
