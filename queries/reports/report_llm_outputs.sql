-- `agenttrace report`: the whole output of every LLM step up to step $max_step, to find the LLM
-- step that asked for each tool call as `step_decided_by.sql` does (the latest earlier LLM step
-- whose output holds the step's tool call id, else the closest earlier LLM step).
SELECT step, span_id, output
FROM steps
WHERE run_id = $run_id AND kind = 'llm' AND step <= $max_step
ORDER BY step;
