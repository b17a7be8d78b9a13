-- `agenttrace export`: the run itself, for a timeline's frame: its state, its root span, and its
-- first and last times in ns (the last: the latest start or end of any span, which closes what
-- never ended). The state and the root are the `runs` view's (the supervisor's, for a supervised run).
SELECT
    r.run_id,
    r.name,
    r.state,
    r.root_span_id,
    r.exit_code,
    r.signal,
    r.command,
    r.supervised,
    epoch_ns(r.started) AS start_ns,
    CASE WHEN r.ended IS NOT NULL THEN epoch_ns(r.ended) END AS end_ns,
    (SELECT max(epoch_ns(coalesce(s.end_time, s.start_time))) FROM spans s WHERE s.run_id = r.run_id)
        AS last_ns,
    (SELECT min(epoch_ns(s.start_time)) FROM spans s WHERE s.run_id = r.run_id) AS first_ns
FROM runs r
WHERE r.run_id = $run_id;
