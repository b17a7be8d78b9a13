-- `agenttrace report`: the run's first $max_steps steps, as `agenttrace step` numbers them, each
-- input and output cut to its first $cut characters (`input_chars`/`output_chars`: the whole
-- length), with the step count of the whole run (`of`).
SELECT
    step, kind, name, span_id, parent_span_id, start_time, end_time, duration_ms, status_code,
    status_message, ended, model, tool_name, tool_call_id, finish_reason, input_tokens,
    output_tokens, cost_usd, exit_code, command,
    left(input, $cut) AS input,
    length(input) AS input_chars,
    left(output, $cut) AS output,
    length(output) AS output_chars,
    count(*) OVER () AS "of"
FROM steps
WHERE run_id = $run_id
QUALIFY row_number() OVER (ORDER BY step) <= $max_steps
ORDER BY step;
