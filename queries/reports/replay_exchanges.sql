-- The LLM exchanges a run's supervisor recorded (`agenttrace run --record`, or a replay), in order:
-- only its own spans (`origin = 'supervisor'`), never what the agent reported about itself.
SELECT span_id, start_time, end_time, attributes
FROM spans
WHERE run_id = $run_id
  AND origin = 'supervisor'
  AND attributes['agenttrace.span.type'] = 'llm_exchange'
ORDER BY TRY_CAST(attributes['agenttrace.exchange.seq'] AS BIGINT), start_time, span_id;
