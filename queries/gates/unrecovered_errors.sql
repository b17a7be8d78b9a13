-- description: Every failed LLM call, tool call or process was followed by a later success of the same model, tool or program.
-- severity: error
-- applies: SELECT count(*) > 0 FROM steps WHERE run_id = $run_id AND kind IN ('llm', 'tool', 'process')
WITH work AS (
    SELECT
        s.step,
        s.kind,
        s.span_id,
        s.start_time,
        s.status_code,
        CASE s.kind
            WHEN 'llm' THEN 'model ' || coalesce(s.model, s.name)
            WHEN 'tool' THEN 'tool ' || coalesce(s.tool_name, s.name)
            ELSE 'process ' || coalesce(p.executable, s.name)
        END AS what,
        coalesce(s.status_message, '') AS message,
        p.exit_code
    FROM steps s  -- steps, not spans: a tool call a CLI agent only logged is a step with no span
    LEFT JOIN processes p ON p.run_id = s.run_id AND p.span_id = s.span_id
    WHERE s.run_id = $run_id AND s.kind IN ('llm', 'tool', 'process') AND s.ended
)
SELECT
    'the ' || f.what || ' failed at step ' || f.step
        || CASE WHEN f.message <> '' THEN ' (' || f.message || ')' ELSE '' END
        || ' and no later call of it succeeded' AS reason,
    f.span_id,
    f.step,
    f.what
FROM work f
WHERE f.status_code = 'Error'
  AND NOT EXISTS (
      SELECT 1 FROM work later
      WHERE later.what = f.what AND later.start_time > f.start_time AND later.status_code <> 'Error'
  )
ORDER BY f.step;
