-- All-runs form of queries/gates/budget.sql (from its ClickHouse variant, queries/clickhouse/gates/budget.sql):
-- every run in {runs:Array(String)} at once; the per-run CROSS JOIN of `limits` and `used` is a join on run_id.
WITH
    (j, a, b) -> if(isValidJSON(j) AND JSONHas(j, a, b) AND JSONType(j, a, b) != 'Null', JSONExtractString(j, a, b), NULL) AS json_text,
    s -> multiIf(
        match(trimBoth(s), '^[+-]?[0-9]+$'), toInt64OrNull(trimBoth(s)),
        abs(toFloat64OrNull(trimBoth(s))) < 9223372036854775807,
            toInt64(sign(toFloat64OrNull(trimBoth(s))) * floor(abs(toFloat64OrNull(trimBoth(s))) + 0.5)),
        NULL) AS try_bigint,
    ((d, e) -> if(e >= -4 AND e < 16,
        if(e >= 0,
           if(length(d) <= e + 1, concat(d, repeat('0', toUInt64(e + 1 - length(d))), '.0'),
              concat(substring(d, 1, e + 1), '.', substring(d, e + 2))),
           concat('0.', repeat('0', toUInt64(-e - 1)), d)),
        concat(substring(d, 1, 1), if(length(d) > 1, concat('.', substring(d, 2)), ''),
               'e', if(e < 0, '-', '+'), if(abs(e) < 10, '0', ''), toString(abs(e))))) AS _duck_fixed,
    ((m, x) -> _duck_fixed(
        replaceRegexpOne(replaceRegexpOne(replaceOne(m, '.', ''), '^0+', ''), '0+$', ''),
        length(splitByChar('.', m)[1]) + x - 1
          - (length(replaceOne(m, '.', '')) - length(replaceRegexpOne(replaceOne(m, '.', ''), '^0+', ''))))) AS _duck_digits,
    -- DuckDB's text of a DOUBLE: shortest digits, fixed for 1e-4 <= |x| < 1e16 (always a `.`), else d.ddde+XX
    (v -> multiIf(isNaN(v), 'nan', isInfinite(v), if(v > 0, 'inf', '-inf'),
        concat(if(startsWith(toString(v), '-'), '-', ''),
               if(v = 0, '0.0', _duck_digits(regexpExtract(toString(abs(v)), '^([0-9.]+)', 1),
                                             toInt32OrZero(regexpExtract(toString(abs(v)), 'e([-+]?[0-9]+)$', 1))))))) AS duck_double,
    -- DuckDB's round(x, n) of a DOUBLE: half away from zero
    (x, n) -> sign(x) * floor(abs(x) * pow(10, n) + 0.5) / pow(10, n) AS duck_round,
limits AS (
    SELECT
        run_id,
        try_bigint(json_text(objective_json, 'limits', 'tokens')) AS tokens,
        toFloat64OrNull(trimBoth(json_text(objective_json, 'limits', 'cost_usd'))) AS cost_usd,
        toFloat64OrNull(trimBoth(json_text(objective_json, 'limits', 'wall_time_s'))) AS wall_time_s,
        coalesce(agent_duration_s, duration_s) AS wall_s,
        root_span_id
    FROM runs
    WHERE has({runs:Array(String)}, run_id)
),
used_by_run AS (
    SELECT
        run_id,
        -- Int128 (DuckDB's HUGEINT): the counts are the agent's word, and a sum past 2^63 must fail the gate
        coalesce(sum(toInt128(coalesce(input_tokens, 0)) + toInt128(coalesce(output_tokens, 0))), toInt128(0)) AS tokens,
        sumOrNull(cost_usd) AS cost_usd,
        count() AS calls,
        countIf(input_tokens IS NULL AND output_tokens IS NULL) AS calls_without_tokens,
        countIf(cost_usd IS NULL) AS calls_without_cost
    FROM steps
    WHERE has({runs:Array(String)}, run_id) AND kind = 'llm'
    GROUP BY run_id
),
-- per run, what the per-run `used` gives: one row, also for a run with no LLM call (0 tokens, no cost, 0 calls)
used AS (
    SELECT
        l.run_id AS run_id,
        coalesce(g.tokens, toInt128(0)) AS tokens,
        g.cost_usd AS cost_usd,
        coalesce(g.calls, toUInt64(0)) AS calls,
        coalesce(g.calls_without_tokens, toUInt64(0)) AS calls_without_tokens,
        coalesce(g.calls_without_cost, toUInt64(0)) AS calls_without_cost
    FROM limits AS l LEFT JOIN used_by_run AS g ON g.run_id = l.run_id
)
SELECT run_id, reason, span_id, limit_name, used, limit_value
FROM (
    SELECT
        l.run_id AS run_id, 1 AS _branch,
        concat('the run used ', toString(u.tokens), ' tokens in ', toString(u.calls), ' LLM call(s), over the limit of ', toString(l.tokens)) AS reason,
        l.root_span_id AS span_id, 'tokens' AS limit_name, toFloat64(u.tokens) AS used, toFloat64(l.tokens) AS limit_value
    FROM limits AS l INNER JOIN used AS u ON u.run_id = l.run_id
    WHERE l.tokens IS NOT NULL AND u.tokens > l.tokens
    UNION ALL
    SELECT
        l.run_id, 2,
        concat('the run cost $', duck_double(duck_round(u.cost_usd, 4)), ', over the limit of $', duck_double(l.cost_usd)),
        l.root_span_id, 'cost_usd', u.cost_usd, l.cost_usd
    FROM limits AS l INNER JOIN used AS u ON u.run_id = l.run_id
    WHERE l.cost_usd IS NOT NULL AND u.cost_usd > l.cost_usd
    UNION ALL
    SELECT
        l.run_id, 3,
        concat('the agent ran for ', duck_double(duck_round(l.wall_s, 1)), ' s, over the wall time limit of ', duck_double(l.wall_time_s), ' s'),
        l.root_span_id, 'wall_time', l.wall_s, l.wall_time_s
    FROM limits AS l
    WHERE l.wall_time_s IS NOT NULL AND l.wall_s > l.wall_time_s
    UNION ALL
    SELECT
        l.run_id, 4,
        concat('the token limit of ', toString(l.tokens), ' cannot be checked: ', toString(u.calls_without_tokens), ' of ', toString(u.calls),
            ' LLM calls recorded no token counts'),
        l.root_span_id, 'tokens', NULL, toFloat64(l.tokens)
    FROM limits AS l INNER JOIN used AS u ON u.run_id = l.run_id
    WHERE l.tokens IS NOT NULL AND u.calls_without_tokens > 0 AND u.tokens <= l.tokens
    UNION ALL
    SELECT
        l.run_id, 5,
        concat('the cost limit of $', duck_double(l.cost_usd), ' cannot be checked: ', toString(u.calls_without_cost), ' of ', toString(u.calls),
            ' LLM calls recorded no cost (llm.cost.total or gen_ai.usage.cost)'),
        l.root_span_id, 'cost_usd', NULL, l.cost_usd
    FROM limits AS l INNER JOIN used AS u ON u.run_id = l.run_id
    WHERE l.cost_usd IS NOT NULL AND u.calls_without_cost > 0 AND coalesce(u.cost_usd, 0) <= l.cost_usd
) AS _b
-- the per-run form has no ORDER BY: its rows come in the order of its UNION ALL branches
ORDER BY run_id, _branch
