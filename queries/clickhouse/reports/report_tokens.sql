-- ClickHouse variant of queries/reports/report_tokens.sql (same meaning, same columns): DuckDB's
-- sum of BIGINTs is a HUGEINT, ClickHouse's sum of Int64 wraps: every sum is over Int128 here.
-- `agenttrace report`: tokens and cost of all the run's LLM steps (as the `budget` gate sums them).
SELECT
    count(*) AS llm_steps,
    coalesce(sum(toInt128(input_tokens)), 0) AS input_tokens,
    coalesce(sum(toInt128(output_tokens)), 0) AS output_tokens,
    -- Int128: token counts are the agent's word, and two of them near 2^63 must not end the report
    coalesce(sum(toInt128(coalesce(input_tokens, 0)) + toInt128(coalesce(output_tokens, 0))), 0) AS tokens,
    sum(cost_usd) AS cost_usd,
    countIf(cost_usd IS NULL) AS steps_without_cost
FROM steps
WHERE run_id = {run_id:String} AND kind = 'llm'
