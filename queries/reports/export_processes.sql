-- `agenttrace export`: the run's OS processes, with their times in ns, for a timeline's process
-- tracks. `is_root`: the agent's own root process (its parent is the run's root span; as the
-- supervisor saw it: the agent cannot report one). `origin`: who reported it (`agent`: a record
-- the agent sent about itself, which proves nothing).
SELECT
    p.span_id,
    p.pid,
    p.parent_pid,
    p.executable,
    p.command_line,
    epoch_ns(p.start_time) AS start_ns,
    CASE WHEN p.ended THEN epoch_ns(p.end_time) END AS end_ns,
    p.ended,
    p.exit_code,
    p.signal,
    p.alive_at_exit,
    p.status_code,
    p.source,
    p.origin,
    p.origin IS DISTINCT FROM 'agent'
        AND p.parent_span_id = (SELECT r.root_span_id FROM runs r WHERE r.run_id = $run_id) AS is_root
FROM processes p
WHERE p.run_id = $run_id
ORDER BY p.start_time, p.span_id;
