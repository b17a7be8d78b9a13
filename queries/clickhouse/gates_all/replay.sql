-- All-runs form of queries/clickhouse/gates/replay.sql: the same rows for every run in {runs:Array(String)},
-- first column run_id, ordered by run_id then every column (the per-run gate has no ORDER BY).
WITH
    (j, k) -> if(isValidJSON(j) AND JSONHas(j, k) AND JSONType(j, k) != 'Null', JSONExtractString(j, k), NULL) AS json_text,
    s -> multiIf(
        match(trimBoth(s), '^[+-]?[0-9]+$'), toInt64OrNull(trimBoth(s)),
        abs(toFloat64OrNull(trimBoth(s))) < 9223372036854775807,
            toInt64(sign(toFloat64OrNull(trimBoth(s))) * floor(abs(toFloat64OrNull(trimBoth(s))) + 0.5)),
        NULL) AS try_bigint,
    s -> if(try_bigint(s) BETWEEN -2147483648 AND 2147483647, toInt32(try_bigint(s)), NULL) AS try_integer,
root AS (
    SELECT run_id, span_id, attributes
    FROM spans
    WHERE has({runs:Array(String)}, run_id) AND parent_span_id IS NULL AND origin IS DISTINCT FROM 'agent'
      AND attributes['agenttrace.replay_of'] IS NOT NULL
)
SELECT
    run_id,
    concat('the replay of run ', attributes['agenttrace.replay_of'], ' diverged at request ',
        json_text(attributes['agenttrace.replay.divergence'], 'seq'), ' (',
        json_text(attributes['agenttrace.replay.divergence'], 'method'), ' /',
        json_text(attributes['agenttrace.replay.divergence'], 'route'),
        json_text(attributes['agenttrace.replay.divergence'], 'path'), '): ',
        coalesce(
            nullIf(arrayStringConcat(arrayMap(x -> assumeNotNull(x), arrayFilter(x -> x IS NOT NULL, arraySlice(
                arrayMap(e -> if(JSONType(e) = 'Null', NULL, JSONExtractString(e)),
                         JSONExtractArrayRaw(ifNull(attributes['agenttrace.replay.divergence'], ''), 'diff')),
                1, 3))), '; '), ''),
            'no recorded request matches it')) AS reason,
    span_id,
    try_integer(json_text(attributes['agenttrace.replay.divergence'], 'seq')) AS request,
    try_integer(json_text(attributes['agenttrace.replay.divergence'], 'step')) AS recorded_exchange
FROM root
WHERE attributes['agenttrace.replay.divergence'] IS NOT NULL
  AND coalesce(attributes['agenttrace.replay.then'], 'fail') <> 'live'
ORDER BY run_id, reason, span_id, request, recorded_exchange
