-- ClickHouse variant of queries/reports/step_decided_by.sql (same meaning, same columns): DuckDB's
-- `contains(haystack, needle)` is `position(haystack, needle) > 0` here.
-- The LLM step that asked for step $step: the latest earlier LLM step whose output holds the
-- step's tool call id; else the closest earlier LLM step.
WITH this AS (SELECT * FROM steps WHERE run_id = {run_id:String} AND step = {step:Int64}),
earlier AS (
    SELECT l.step AS step, l.span_id AS span_id, l.model AS model,
           this.tool_call_id IS NOT NULL AND position(coalesce(l.output, ''), this.tool_call_id) > 0 AS by_id
    FROM steps AS l, this
    WHERE l.run_id = {run_id:String} AND l.kind = 'llm' AND l.step < this.step
)
SELECT
    step,
    span_id,
    CASE WHEN by_id
         THEN 'its output asked for this tool call (id ' || (SELECT tool_call_id FROM this) || ')'
         ELSE 'the closest earlier LLM step'
    END AS reason
FROM earlier
ORDER BY by_id DESC, step DESC
LIMIT 1
