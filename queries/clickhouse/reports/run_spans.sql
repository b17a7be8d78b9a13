-- ClickHouse variant of queries/reports/run_spans.sql (same meaning, same columns): ClickHouse has
-- no `unnest` in a subquery; the first exception event is taken with arrayFilter (an empty
-- array's [1] of a Nullable element is NULL, as DuckDB's empty subquery).
-- The spans of `agenttrace show`, each with its step number and kind, and its first exception.
-- A process seen twice under `agenttrace run` (the watcher's record and the exact one the Python
-- bootstrap made when it spawned it: same pid, started within 2 s, as in the `processes` view) is
-- drawn once, as the exact one; what the watcher saw under its record is drawn under the exact one.
-- A process exec'd with a TRACEPARENT naming another span than its parent's (the watcher's
-- `agenttrace.process.traceparent.*`: Claude Code's Bash tool hands on its span) is drawn under that
-- span when it is drawn too: the agent's word moves where a process is drawn, never whether.
WITH twins AS (
    SELECT w.span_id AS watcher_span_id, any(e.span_id) AS exact_span_id
    FROM spans AS w
    JOIN spans AS e
      ON e.run_id = w.run_id
     AND e.attributes['process.pid'] = w.attributes['process.pid']
     AND e.attributes['agenttrace.process.source'] = 'python'
     AND abs(toUnixTimestamp64Micro(e.start_time) / 1e6 - toUnixTimestamp64Micro(w.start_time) / 1e6) < 2
    WHERE w.run_id = {run_id:String}
      AND w.attributes['agenttrace.process.source'] = 'watcher'
      AND w.origin IS DISTINCT FROM 'agent'
    GROUP BY w.span_id
),
declared AS (
    SELECT s.span_id AS span_id, any(d.span_id) AS parent_span_id
    FROM spans AS s
    JOIN spans AS d
      ON d.run_id = s.run_id AND d.span_id <> s.span_id
     AND d.trace_id = s.attributes['agenttrace.process.traceparent.trace_id']
     AND d.span_id = s.attributes['agenttrace.process.traceparent.span_id']
    WHERE s.run_id = {run_id:String} AND d.span_id NOT IN (SELECT watcher_span_id FROM twins)
    GROUP BY s.span_id
)
SELECT
    s.span_id AS span_id,
    coalesce(dp.parent_span_id, t.exact_span_id, s.parent_span_id) AS parent_span_id,
    s.name AS name,
    s.start_time AS start_time,
    s.end_time AS end_time,
    s.duration_ms AS duration_ms,
    s.status_code AS status_code,
    s.status_message AS status_message,
    s.ended AS ended,
    st.step AS step,
    st.kind AS step_kind,
    st.finish_reason AS finish_reason,
    st.tool_call_id AS tool_call_id,
    arrayMap(e -> e.Attributes['exception.type'] || ': ' || e.Attributes['exception.message'],
             arrayFilter(e -> e.Name = 'exception', s.events))[1] AS exception,
    CAST(s.attributes['process.exit.code'] AS Nullable(Int32)) AS exit_code,
    s.attributes['agenttrace.claim.text'] AS claim_text
FROM spans AS s
LEFT JOIN steps AS st ON st.run_id = s.run_id AND st.span_id = s.span_id
LEFT JOIN twins AS t ON t.watcher_span_id = s.parent_span_id
LEFT JOIN declared AS dp ON dp.span_id = s.span_id
WHERE s.run_id = {run_id:String}
  AND s.span_id NOT IN (SELECT watcher_span_id FROM twins)
ORDER BY s.start_time, s.span_id
