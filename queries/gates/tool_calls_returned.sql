-- description: Every tool call that started also ended.
-- severity: error
-- applies: SELECT count(*) > 0 FROM steps WHERE run_id = $run_id AND kind = 'tool'
SELECT
    'tool call `' || coalesce(tool_name, name) || '` (step ' || step || ') started and never returned' AS reason,
    span_id,
    step,
    tool_name,
    tool_call_id
FROM steps
WHERE run_id = $run_id AND kind = 'tool' AND NOT ended
ORDER BY step;
