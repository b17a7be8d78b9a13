-- `agenttrace report`: the run's header, and the environment its supervisor (or, for a run
-- without one, its root span) recorded: argv, working directory, git, Python and its packages, host.
SELECT
    r.run_id, r.name, r.state, r.started, r.ended, r.duration_s, r.agent_duration_s, r.exit_code,
    r.signal, r.command, r.objective_json, r.span_count, r.unfinished_count, r.error_count,
    r.root_span_id, r.service_name, r.supervised,
    s.attributes AS root_attributes,
    s.resource_attributes AS root_resource
FROM runs r
LEFT JOIN spans s ON s.run_id = r.run_id AND s.span_id = r.root_span_id
WHERE r.run_id = $run_id
LIMIT 1;
