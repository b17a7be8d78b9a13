-- description: Every span ended, none ended after the run did, and every parent named is in the run.
-- severity: error
--
--
-- ClickHouse variant of queries/gates/unfinished_spans.sql (same columns, same reasons): see the
-- DuckDB file for why a parent left open at a clean exit is let go. Why hand-written: DuckDB's
-- `LEFT JOIN agent_unsent_parents a ON c.service_name LIKE a.service_like` has no equality, which
-- a ClickHouse join needs; `bool_and(a.service_like IS NOT NULL)` (every child's service matches
-- some pattern) is arrayExists over the patterns per child here. DuckDB's LIKE has no escape
-- character, ClickHouse's is `\`: doubled. NOT IN keeps SQL's NULL rule.
WITH run AS (
    SELECT root_span_id, ended AS run_end, exit_code FROM runs WHERE run_id = {run_id:String}
),
run_spans AS (  -- an earlier audit's record is not the agent's work
    SELECT s.* FROM spans AS s
    WHERE s.run_id = {run_id:String} AND s.attributes['agenttrace.span.type'] IS DISTINCT FROM 'audit'
),
left_open_at_exit AS (
    SELECT parent_span_id
    FROM (
        SELECT
            c.parent_span_id AS parent_span_id,
            c.ended AS ended,
            arrayExists(p -> ifNull(c.service_name LIKE replaceAll(p, '\\', '\\\\'), false),
                        (SELECT groupArray(service_like) FROM agent_unsent_parents)) AS _matched
        FROM run_spans AS c
        WHERE c.parent_span_id IS NOT NULL
    )
    GROUP BY parent_span_id
    HAVING min(ended) AND min(_matched)
)
SELECT
    multiIf(
        NOT s.ended, concat('span `', s.name, '` started and never ended'),
        s.end_time > r.run_end + INTERVAL 1 SECOND, concat('span `', s.name, '` ended after the run did'),
        concat('span `', s.name, '` names a parent (', s.parent_span_id, ') that is not in the run')
    ) AS reason,
    s.span_id AS span_id,
    s.name AS name,
    s.parent_span_id AS parent_span_id
FROM run_spans AS s CROSS JOIN run AS r
WHERE (NOT s.ended AND s.span_id <> r.root_span_id)
   OR (s.ended AND r.run_end IS NOT NULL AND s.end_time > r.run_end + INTERVAL 1 SECOND)
   OR (s.parent_span_id IS NOT NULL AND s.span_id <> r.root_span_id
       AND s.parent_span_id NOT IN (SELECT span_id FROM run_spans)
       AND NOT EXISTS (SELECT 1 FROM run_spans WHERE span_id IS NULL)
       AND NOT (coalesce(r.exit_code = 0, false)
                AND s.parent_span_id IN (SELECT parent_span_id FROM left_open_at_exit)))
ORDER BY s.start_time, s.span_id
