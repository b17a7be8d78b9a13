-- The runs a ClickHouse database holds, with the first and last time a record of each was written:
-- pushed runs (newest push) and, for runs never pushed, what the collector's exporter wrote (a
-- span's run as in views/raw.sql). Cheap: no view is computed. `agenttrace runs`, `audit --all`
-- and RUN prefixes and `last` start here. Parameters: {since:DateTime64(9, 'UTC')}.
SELECT run_id, min(first) AS first_seen, max(last) AS last_seen
FROM (
    SELECT s.RunId AS run_id, min(s.Timestamp) AS first, max(s.Timestamp) AS last
    FROM agenttrace_spans AS s
    INNER JOIN (SELECT RunId, max(PushedAt) AS PushedAt FROM agenttrace_runs GROUP BY RunId) AS p
        ON s.RunId = p.RunId AND s.PushedAt = p.PushedAt
    GROUP BY run_id
    UNION ALL
    SELECT
        coalesce(nullif(SpanAttributes['agenttrace.run.id'], ''), nullif(ResourceAttributes['agenttrace.run.id'], ''), TraceId) AS run_id,
        CAST(min(Timestamp), 'DateTime64(9, \'UTC\')') AS first,
        CAST(max(Timestamp), 'DateTime64(9, \'UTC\')') AS last
    FROM otel_traces
    WHERE run_id NOT IN (SELECT RunId FROM agenttrace_runs)
    GROUP BY run_id
)
GROUP BY run_id
HAVING max(last) >= {since:DateTime64(9, 'UTC')}
ORDER BY first_seen, run_id
