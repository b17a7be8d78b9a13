-- description: A replayed run got its model answers from its recording up to the end, or its divergence was let go on upstream (--then live).
-- severity: error
-- applies: SELECT EXISTS (FROM spans WHERE run_id = $run_id AND attributes['agenttrace.replay_of'] IS NOT NULL AND parent_span_id IS NULL AND origin IS DISTINCT FROM 'agent')
--
-- What the supervisor recorded on the run's root span decides it: the run it replays
-- (`agenttrace.replay_of`), the first request its recording could not answer
-- (`agenttrace.replay.divergence`, JSON: the request's number, the recorded exchange expected
-- there, and the differences), and what was to happen then (`agenttrace.replay.then`: `fail`, or
-- `live`: go on calling the upstream, recorded).
WITH root AS (
    SELECT span_id, attributes
    FROM spans
    WHERE run_id = $run_id AND parent_span_id IS NULL AND origin IS DISTINCT FROM 'agent'
      AND attributes['agenttrace.replay_of'] IS NOT NULL
)
SELECT
    'the replay of run ' || (attributes['agenttrace.replay_of']) || ' diverged at request '
        || (attributes['agenttrace.replay.divergence'] ->> '$.seq') || ' ('
        || (attributes['agenttrace.replay.divergence'] ->> '$.method') || ' /'
        || (attributes['agenttrace.replay.divergence'] ->> '$.route')
        || (attributes['agenttrace.replay.divergence'] ->> '$.path') || '): '
        || coalesce(
            nullif(array_to_string(
                CAST(json_extract(attributes['agenttrace.replay.divergence'], '$.diff') AS VARCHAR[])[1:3], '; '
            ), ''),
            'no recorded request matches it'
        ) AS reason,
    span_id,
    TRY_CAST(attributes['agenttrace.replay.divergence'] ->> '$.seq' AS INTEGER) AS request,
    TRY_CAST(attributes['agenttrace.replay.divergence'] ->> '$.step' AS INTEGER) AS recorded_exchange
FROM root
WHERE attributes['agenttrace.replay.divergence'] IS NOT NULL
  AND coalesce(attributes['agenttrace.replay.then'], 'fail') <> 'live';
