-- Everything under step $step's span: processes (with exit codes), HTTP calls, other spans.
WITH RECURSIVE this AS (SELECT span_id FROM steps WHERE run_id = $run_id AND step = $step),
below(span_id, depth) AS (
    SELECT s.span_id, 1 FROM spans s, this WHERE s.run_id = $run_id AND s.parent_span_id = this.span_id
    UNION ALL
    SELECT s.span_id, b.depth + 1 FROM spans s JOIN below b ON s.parent_span_id = b.span_id
    WHERE s.run_id = $run_id AND b.depth < 50
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
FROM below b
JOIN spans s ON s.run_id = $run_id AND s.span_id = b.span_id
LEFT JOIN processes p ON p.run_id = $run_id AND p.span_id = s.span_id
ORDER BY s.start_time, s.span_id;
