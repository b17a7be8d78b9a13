-- The LLM step that asked for step $step: the latest earlier LLM step whose output holds the
-- step's tool call id; else the closest earlier LLM step.
WITH this AS (SELECT * FROM steps WHERE run_id = $run_id AND step = $step),
earlier AS (
    SELECT l.step, l.span_id, l.model,
           this.tool_call_id IS NOT NULL AND contains(coalesce(l.output, ''), this.tool_call_id) AS by_id
    FROM steps l, this
    WHERE l.run_id = $run_id AND l.kind = 'llm' AND l.step < this.step
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
LIMIT 1;
