-- ClickHouse variant of queries/reports/report_llm_outputs.sql (same meaning, same columns):
-- DuckDB's `left` counts characters, ClickHouse's counts bytes: leftUTF8 here.
-- `agenttrace report`: the first $max_chars characters of the output of every LLM step up to step
-- $max_step, to find the LLM step that asked for each tool call as `step_decided_by.sql` does (the
-- latest earlier LLM step whose output holds the step's tool call id, else the closest earlier one).
SELECT step, span_id, leftUTF8(output, {max_chars:Int64}) AS output
FROM steps
WHERE run_id = {run_id:String} AND kind = 'llm' AND step <= {max_step:Int64}
ORDER BY step
