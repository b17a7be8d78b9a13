-- All-runs form of queries/clickhouse/gates/unfinished_spans.sql: the same rows for every run in
-- {runs:Array(String)}, first column run_id, ordered by run_id then the per-run gate's ORDER BY.
-- The CROSS JOIN with the run's `runs` row is a join on run_id; `parent_span_id NOT IN (SELECT span_id
-- FROM run_spans)` is an anti-join on (run_id, span_id) (the parent is not NULL there), with the per-run
-- count of NULL span ids for the EXISTS test; `IN left_open_at_exit` is a join on (run_id, parent_span_id).
WITH run AS (
    SELECT run_id, root_span_id, ended AS run_end, exit_code FROM runs WHERE has({runs:Array(String)}, run_id)
),
run_spans AS (  -- an earlier audit's record is not the agent's work
    SELECT s.* FROM spans AS s
    WHERE has({runs:Array(String)}, s.run_id) AND s.attributes['agenttrace.span.type'] IS DISTINCT FROM 'audit'
),
span_ids AS (
    SELECT DISTINCT run_id, span_id, true AS present FROM run_spans WHERE span_id IS NOT NULL
),
null_span_ids AS (
    SELECT run_id, count() AS n_null FROM run_spans WHERE span_id IS NULL GROUP BY run_id
),
left_open_at_exit AS (
    SELECT run_id, parent_span_id, true AS left_open
    FROM (
        SELECT
            c.run_id AS run_id,
            c.parent_span_id AS parent_span_id,
            c.ended AS ended,
            arrayExists(p -> ifNull(c.service_name LIKE replaceAll(p, '\\', '\\\\'), false),
                        (SELECT groupArray(service_like) FROM agent_unsent_parents)) AS _matched
        FROM run_spans AS c
        WHERE c.parent_span_id IS NOT NULL
    )
    GROUP BY run_id, parent_span_id
    HAVING min(ended) AND min(_matched)
)
SELECT
    s.run_id AS run_id,
    multiIf(
        NOT s.ended, concat('span `', s.name, '` started and never ended'),
        s.end_time > r.run_end + INTERVAL 1 SECOND, concat('span `', s.name, '` ended after the run did'),
        concat('span `', s.name, '` names a parent (', s.parent_span_id, ') that is not in the run')
    ) AS reason,
    s.span_id AS span_id,
    s.name AS name,
    s.parent_span_id AS parent_span_id
FROM run_spans AS s
INNER JOIN run AS r ON r.run_id = s.run_id
LEFT JOIN span_ids AS p ON p.run_id = s.run_id AND p.span_id = s.parent_span_id
LEFT JOIN null_span_ids AS nn ON nn.run_id = s.run_id
LEFT JOIN left_open_at_exit AS lo ON lo.run_id = s.run_id AND lo.parent_span_id = s.parent_span_id
WHERE (NOT s.ended AND s.span_id <> r.root_span_id)
   OR (s.ended AND r.run_end IS NOT NULL AND s.end_time > r.run_end + INTERVAL 1 SECOND)
   OR (s.parent_span_id IS NOT NULL AND s.span_id <> r.root_span_id
       AND p.present IS NULL
       AND coalesce(nn.n_null, 0) = 0
       AND NOT (coalesce(r.exit_code = 0, false) AND lo.left_open IS NOT NULL))
ORDER BY run_id, s.start_time, s.span_id
