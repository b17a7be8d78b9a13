-- `agenttrace diff`: one run's steps in order, with what the diff compares: for an LLM step its
-- model, request (input), answer (output) and finish reason; for a tool step its tool, arguments
-- (input), result (output) and exit code; for a process step its command line (input) and exit
-- code (output); how each ended.
SELECT
    step, kind, name, span_id, model, tool_name, finish_reason, input, output, command, exit_code,
    CASE WHEN NOT ended THEN 'unfinished' WHEN status_code = 'Error' THEN 'error' ELSE 'ok' END AS status,
    status_message, input_tokens, output_tokens, cost_usd, duration_ms
FROM steps
WHERE run_id = $run_id
ORDER BY step;
