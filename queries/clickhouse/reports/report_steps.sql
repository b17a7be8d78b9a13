-- ClickHouse variant of queries/reports/report_steps.sql (same meaning, same columns): DuckDB's
-- `left` and `length` count characters, ClickHouse's count bytes: leftUTF8 / lengthUTF8 here.
-- `agenttrace report`: the run's first $max_steps steps, as `agenttrace step` numbers them, each
-- input and output cut to its first $cut characters (`input_chars`/`output_chars`: the whole
-- length), with the step count of the whole run (`of`).
SELECT
    step, kind, name, span_id, parent_span_id, start_time, end_time, duration_ms, status_code,
    status_message, ended, model, tool_name, tool_call_id, finish_reason, input_tokens,
    output_tokens, cost_usd, exit_code, command,
    leftUTF8(input, {cut:Int64}) AS input,
    lengthUTF8(input) AS input_chars,
    leftUTF8(output, {cut:Int64}) AS output,
    lengthUTF8(output) AS output_chars,
    count(*) OVER () AS "of"
FROM steps
WHERE run_id = {run_id:String}
QUALIFY row_number() OVER (ORDER BY step) <= {max_steps:Int64}
ORDER BY step
