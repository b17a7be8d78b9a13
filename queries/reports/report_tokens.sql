-- `agenttrace report`: tokens and cost of all the run's LLM steps (as the `budget` gate sums them).
SELECT
    count(*) AS llm_steps,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    -- HUGEINT: token counts are the agent's word, and two of them near 2^63 must not end the report
    coalesce(sum(coalesce(input_tokens, 0)::HUGEINT + coalesce(output_tokens, 0)::HUGEINT), 0) AS tokens,
    sum(cost_usd) AS cost_usd,
    count(*) FILTER (WHERE cost_usd IS NULL) AS steps_without_cost
FROM steps
WHERE run_id = $run_id AND kind = 'llm';
