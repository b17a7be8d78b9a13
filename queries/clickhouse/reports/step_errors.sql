-- ClickHouse variant of queries/reports/step_errors.sql (same meaning, same columns): ClickHouse
-- has no `unnest` in a subquery; the first exception event is taken with arrayFilter (an empty
-- array's [1] of a Nullable element is NULL, as DuckDB's empty subquery).
-- Errors at step $step: its own span's, and those of the spans under it, with exception events.
WITH RECURSIVE this AS (SELECT span_id FROM steps WHERE run_id = {run_id:String} AND step = {step:Int64}),
tree AS (
    SELECT span_id, toInt32(0) AS depth FROM this
    UNION ALL
    SELECT s.span_id AS span_id, toInt32(t.depth + 1) AS depth
    FROM spans AS s JOIN tree AS t ON s.parent_span_id = t.span_id
    WHERE s.run_id = {run_id:String} AND t.depth < 50
)
SELECT
    s.span_id AS span_id,
    s.name AS name,
    coalesce(s.status_message, 'error') AS message,
    arrayMap(e -> e.Attributes['exception.type'], arrayFilter(e -> e.Name = 'exception', s.events))[1]
        AS exception_type
FROM tree AS t
JOIN spans AS s ON s.run_id = {run_id:String} AND s.span_id = t.span_id
WHERE s.status_code = 'Error'
ORDER BY s.start_time
