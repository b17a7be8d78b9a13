-- description: A replayed run got its model answers from its recording up to the end, or its divergence was let go on upstream (--then live).
-- severity: error
-- applies: SELECT EXISTS (FROM spans WHERE run_id = $run_id AND attributes['agenttrace.replay_of'] IS NOT NULL AND parent_span_id IS NULL AND origin IS DISTINCT FROM 'agent')
--
-- ClickHouse variant of queries/gates/replay.sql (same columns, same reasons): see the DuckDB file
-- for what the root span's attributes say. Why hand-written: the DuckDB list slice of
-- CAST(json_extract(d, '$.diff') AS VARCHAR[])[1:3] and array_to_string (which skips NULLs) are
-- arraySlice over JSONExtractArrayRaw and arrayStringConcat; `->>` keeps DuckDB's NULL;
-- TRY_CAST(text AS INTEGER) is written out as DuckDB parses text.
WITH
    (j, k) -> if(isValidJSON(j) AND JSONHas(j, k) AND JSONType(j, k) != 'Null', JSONExtractString(j, k), NULL) AS json_text,
    s -> multiIf(
        match(trimBoth(s), '^[+-]?[0-9]+$'), toInt64OrNull(trimBoth(s)),
        abs(toFloat64OrNull(trimBoth(s))) < 9223372036854775807,
            toInt64(sign(toFloat64OrNull(trimBoth(s))) * floor(abs(toFloat64OrNull(trimBoth(s))) + 0.5)),
        NULL) AS try_bigint,
    s -> if(try_bigint(s) BETWEEN -2147483648 AND 2147483647, toInt32(try_bigint(s)), NULL) AS try_integer,
root AS (
    SELECT span_id, attributes
    FROM spans
    WHERE run_id = {run_id:String} AND parent_span_id IS NULL AND origin IS DISTINCT FROM 'agent'
      AND attributes['agenttrace.replay_of'] IS NOT NULL
)
SELECT
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
