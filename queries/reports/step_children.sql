-- Everything under step $step's span: processes (with exit codes), HTTP calls, other spans. A
-- process is under the span its TRACEPARENT named, where that is in the run and not its parent's
-- (the watcher's `agenttrace.process.traceparent.*`: the processes a Claude Code Bash tool ran).
WITH RECURSIVE this AS (SELECT span_id FROM steps WHERE run_id = $run_id AND step = $step),
placed AS (
    SELECT s.span_id, coalesce(d.span_id, s.parent_span_id) AS parent_span_id
    FROM spans s
    LEFT JOIN spans d
      ON d.run_id = s.run_id AND d.span_id <> s.span_id
     AND d.trace_id = s.attributes['agenttrace.process.traceparent.trace_id']
     AND d.span_id = s.attributes['agenttrace.process.traceparent.span_id']
    WHERE s.run_id = $run_id
),
below(span_id, depth) AS (
    SELECT p.span_id, 1 FROM placed p, this WHERE p.parent_span_id = this.span_id
    UNION ALL
    SELECT p.span_id, b.depth + 1 FROM placed p JOIN below b ON p.parent_span_id = b.span_id
    WHERE b.depth < 50
)
SELECT
    CASE
        WHEN p.span_id IS NOT NULL THEN 'process'
        WHEN s.attributes['http.request.method'] IS NOT NULL OR s.attributes['http.method'] IS NOT NULL THEN 'http'
        ELSE 'span'
    END AS kind,
    s.name,
    s.span_id,
    s.status_code,
    s.ended,
    p.pid,
    p.command_line,
    p.exit_code,
    p.signal,
    coalesce(s.attributes['http.request.method'], s.attributes['http.method']) AS http_method,
    coalesce(s.attributes['url.full'], s.attributes['http.url']) AS url,
    TRY_CAST(coalesce(s.attributes['http.response.status_code'], s.attributes['http.status_code']) AS INTEGER)
        AS http_status
FROM (SELECT DISTINCT span_id FROM below) b
JOIN spans s ON s.run_id = $run_id AND s.span_id = b.span_id
LEFT JOIN processes p ON p.run_id = $run_id AND p.span_id = s.span_id
ORDER BY s.start_time, s.span_id;
