-- description: The run stayed within the objective's limits: tokens (input + output of every LLM call), cost in USD, and the agent's wall time.
-- severity: error
-- applies: SELECT coalesce(objective_json ->> '$.limits.tokens', objective_json ->> '$.limits.cost_usd', objective_json ->> '$.limits.wall_time_s') IS NOT NULL FROM runs WHERE run_id = $run_id
WITH limits AS (
    SELECT
        TRY_CAST(objective_json ->> '$.limits.tokens' AS BIGINT) AS tokens,
        TRY_CAST(objective_json ->> '$.limits.cost_usd' AS DOUBLE) AS cost_usd,
        TRY_CAST(objective_json ->> '$.limits.wall_time_s' AS DOUBLE) AS wall_time_s,
        coalesce(agent_duration_s, duration_s) AS wall_s,
        root_span_id
    FROM runs
    WHERE run_id = $run_id
),
used AS (
    SELECT
        -- HUGEINT: the counts are the agent's word, and a sum past 2^63 must fail the gate, not stop it
        coalesce(sum(coalesce(input_tokens, 0)::HUGEINT + coalesce(output_tokens, 0)::HUGEINT), 0) AS tokens,
        sum(cost_usd) AS cost_usd,
        count(*) AS calls,
        count(*) FILTER (WHERE input_tokens IS NULL AND output_tokens IS NULL) AS calls_without_tokens,
        count(*) FILTER (WHERE cost_usd IS NULL) AS calls_without_cost
    FROM steps
    WHERE run_id = $run_id AND kind = 'llm'
)
SELECT
    'the run used ' || u.tokens || ' tokens in ' || u.calls || ' LLM call(s), over the limit of ' || l.tokens AS reason,
    l.root_span_id AS span_id, 'tokens' AS limit_name, u.tokens::DOUBLE AS used, l.tokens::DOUBLE AS limit_value
FROM limits l, used u
WHERE l.tokens IS NOT NULL AND u.tokens > l.tokens
UNION ALL
SELECT
    'the run cost $' || round(u.cost_usd, 4) || ', over the limit of $' || l.cost_usd,
    l.root_span_id, 'cost_usd', u.cost_usd, l.cost_usd
FROM limits l, used u
WHERE l.cost_usd IS NOT NULL AND u.cost_usd > l.cost_usd
UNION ALL
SELECT
    'the agent ran for ' || round(l.wall_s, 1) || ' s, over the wall time limit of ' || l.wall_time_s || ' s',
    l.root_span_id, 'wall_time', l.wall_s, l.wall_time_s
FROM limits l
WHERE l.wall_time_s IS NOT NULL AND l.wall_s > l.wall_time_s
UNION ALL
SELECT
    'the token limit of ' || l.tokens || ' cannot be checked: ' || u.calls_without_tokens || ' of ' || u.calls
        || ' LLM calls recorded no token counts',
    l.root_span_id, 'tokens', NULL, l.tokens::DOUBLE
FROM limits l, used u
WHERE l.tokens IS NOT NULL AND u.calls_without_tokens > 0 AND u.tokens <= l.tokens
UNION ALL
SELECT
    'the cost limit of $' || l.cost_usd || ' cannot be checked: ' || u.calls_without_cost || ' of ' || u.calls
        || ' LLM calls recorded no cost (llm.cost.total or gen_ai.usage.cost)',
    l.root_span_id, 'cost_usd', NULL, l.cost_usd
FROM limits l, used u
WHERE l.cost_usd IS NOT NULL AND u.calls_without_cost > 0 AND coalesce(u.cost_usd, 0) <= l.cost_usd;
