-- `agenttrace report`: the timeline's bars: every step, every process and every verification of
-- the run, with its start and end (NULL: it never ended), exit code and whether it was left alive
-- after the agent exited; `step_kind`: llm, tool, ... for a step. `label`: the step's number and name, the process's command line.
SELECT 'step' AS kind, span_id, step, '#' || step || ' ' || kind || ' ' || coalesce(name, '') AS label,
       start_time, CASE WHEN ended THEN end_time END AS end_time, status_code,
       exit_code, false AS orphaned, kind AS step_kind
FROM steps
WHERE run_id = $run_id
UNION ALL
SELECT 'process', span_id, NULL, coalesce(nullif(command_line, ''), executable, CAST(pid AS VARCHAR)),
       start_time, CASE WHEN ended THEN end_time END, status_code, exit_code, coalesce(alive_at_exit, false), NULL
FROM processes
WHERE run_id = $run_id
UNION ALL
SELECT 'verification', span_id, NULL, name, start_time, CASE WHEN ended THEN end_time END,
       CASE WHEN passed IS DISTINCT FROM true THEN 'Error' END, exit_code, false, NULL
FROM verifications
WHERE run_id = $run_id
ORDER BY 5, 2;
