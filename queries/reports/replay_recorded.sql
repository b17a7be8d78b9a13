-- Whether a run's supervisor recorded its LLM exchanges (the run's root span, written by the
-- supervisor), and the working directory the requests were normalised against.
SELECT
    attributes['agenttrace.replay.recorded'] AS recorded,
    attributes['agenttrace.replay.workdir'] AS workdir
FROM spans
WHERE run_id = $run_id AND origin = 'supervisor' AND attributes['agenttrace.span.type'] = 'run'
ORDER BY start_time
LIMIT 1;
