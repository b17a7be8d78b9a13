-- All-runs form of queries/gates/tool_calls_returned.sql: every run in {runs:Array(String)} at once.
SELECT
    run_id,
    'tool call `' || COALESCE(tool_name, name) || '` (step ' || step || ') started and never returned' AS reason,
    span_id,
    step,
    tool_name,
    tool_call_id
FROM steps
WHERE has({runs:Array(String)}, run_id) AND kind = 'tool' AND NOT ended
ORDER BY run_id, step
