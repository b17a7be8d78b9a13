-- `agenttrace report`: tokens and cost of all the run's LLM steps (as the `budget` gate sums them).
SELECT
    count(*) AS llm_steps,
    coalesce(sum(input_tokens), 0) AS input_tokens,
    coalesce(sum(output_tokens), 0) AS output_tokens,
    coalesce(sum(coalesce(input_tokens, 0) + coalesce(output_tokens, 0)), 0) AS tokens,
    sum(cost_usd) AS cost_usd,
    count(*) FILTER (WHERE cost_usd IS NULL) AS steps_without_cost
FROM steps
WHERE run_id = $run_id AND kind = 'llm';
