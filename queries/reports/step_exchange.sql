-- `agenttrace step RUN N`: the model exchange `agenttrace run --record` (or a replay) kept for LLM
-- step $step: the supervisor's `llm_exchange` span whose time overlaps the step's (the call the
-- step describes, as the proxy saw it; the nearest start when several do), with its request and
-- answer as content-addressed artifacts. No row for a run recorded without --record.
WITH this AS (
    SELECT start_time, coalesce(end_time, start_time) AS end_time
    FROM steps
    WHERE run_id = $run_id AND step = $step AND kind = 'llm'
)
SELECT
    s.span_id,
    TRY_CAST(s.attributes['agenttrace.exchange.seq'] AS INTEGER) AS seq,
    s.attributes['agenttrace.exchange.mode'] AS mode,
    s.attributes['agenttrace.exchange.method'] AS method,
    '/' || s.attributes['agenttrace.exchange.route'] || s.attributes['agenttrace.exchange.path'] AS path,
    TRY_CAST(s.attributes['agenttrace.exchange.status'] AS INTEGER) AS status,
    s.attributes['agenttrace.exchange.request_sha256'] AS request_sha256,
    s.attributes['agenttrace.exchange.response_sha256'] AS response_sha256,
    TRY_CAST(s.attributes['agenttrace.exchange.response_size'] AS BIGINT) AS response_size
FROM spans s, this
WHERE s.run_id = $run_id
  AND s.attributes['agenttrace.span.type'] = 'llm_exchange'
  AND s.origin IS DISTINCT FROM 'agent'
  AND s.start_time <= this.end_time
  AND coalesce(s.end_time, s.start_time) >= this.start_time
ORDER BY abs(epoch(s.start_time) - epoch(this.start_time)), s.span_id
LIMIT 1;
