-- Errors at step $step: its own span's, and those of the spans under it, with exception events.
WITH RECURSIVE this AS (SELECT span_id FROM steps WHERE run_id = $run_id AND step = $step),
tree(span_id, depth) AS (
    SELECT span_id, 0 FROM this
    UNION ALL
    SELECT s.span_id, t.depth + 1 FROM spans s JOIN tree t ON s.parent_span_id = t.span_id
    WHERE s.run_id = $run_id AND t.depth < 50
)
SELECT
    s.span_id,
    s.name,
    coalesce(s.status_message, 'error') AS message,
    (SELECT e.Attributes['exception.type'] FROM unnest(s.events) AS u(e)
     WHERE e.Name = 'exception' LIMIT 1) AS exception_type
FROM tree t
JOIN spans s ON s.run_id = $run_id AND s.span_id = t.span_id
WHERE s.status_code = 'Error'
ORDER BY s.start_time;
