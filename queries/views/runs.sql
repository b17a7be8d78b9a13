-- One row per run. The root is the run's agenttrace `run` span, else its earliest span without a
-- parent in the run. State:
--   the root ended:  its `agenttrace.run.state`, else `failed` if its status is Error, else `succeeded`
--   no end yet:      `running` while a live writer holds the run's spool, else `unknown`
--                    (records stopped arriving without an end: the process crashed or was killed)
-- `objective` is the run's objective as stored (JSON from an objective file, or any text a producer
-- put there); `objective_json` is it parsed, NULL when it is not a JSON object.
--   audited:         the state of the run's latest `audit` span (`agenttrace run` audits at the
--                    end: a run succeeds only if every error-severity gate passed)
-- In a run recorded by `agenttrace run` (`supervised`: it has a manifest), the root and the audit
-- are the supervisor's records: spans the agent reported (`origin = 'agent'`) that pose as them
-- are ignored. `recorded_gates` is the gate set the supervisor fixed before the agent started.
CREATE OR REPLACE VIEW runs AS
WITH placed AS (
    SELECT s.*, p.span_id IS NOT NULL AS _parent_in_run
    FROM spans s
    LEFT JOIN spans p ON p.run_id = s.run_id AND p.trace_id = s.trace_id AND p.span_id = s.parent_span_id
),
roots AS (
    SELECT *
    FROM placed
    QUALIFY row_number() OVER (
        PARTITION BY run_id
        ORDER BY origin IS DISTINCT FROM 'agent' DESC, (attributes['agenttrace.span.type'] = 'run') DESC NULLS LAST,
                 _parent_in_run, start_time, span_id
    ) = 1
),
audits AS (
    SELECT run_id, attributes['agenttrace.audit.state'] AS audit_state,
           attributes['agenttrace.audit.reasons'] AS audit_reasons
    FROM spans
    WHERE attributes['agenttrace.span.type'] = 'audit' AND ended AND origin IS DISTINCT FROM 'agent'
    QUALIFY row_number() OVER (PARTITION BY run_id ORDER BY end_time DESC, span_id) = 1
),
totals AS (
    SELECT
        run_id,
        min(start_time) AS first_start,
        max(end_time) AS last_end,
        count(*) AS span_count,
        count(*) FILTER (WHERE NOT ended) AS unfinished_count,
        count(*) FILTER (WHERE status_code = 'Error') AS error_count
    FROM spans
    GROUP BY run_id
)
SELECT
    r.run_id,
    coalesce(r.attributes['agenttrace.run.name'], r.name) AS name,
    CASE
        WHEN a.audit_state IS NOT NULL THEN a.audit_state
        WHEN r.ended THEN coalesce(
            r.attributes['agenttrace.run.state'],
            CASE WHEN r.status_code = 'Error' THEN 'failed' ELSE 'succeeded' END)
        WHEN r.run_id IN (SELECT run_id FROM live_runs) THEN 'running'
        ELSE 'unknown'
    END AS state,
    r.start_time AS started,
    r.end_time AS ended,
    CASE WHEN r.ended THEN (epoch_ns(r.end_time) - epoch_ns(r.start_time)) / 1e9 END AS duration_s,
    TRY_CAST(r.attributes['process.exit.code'] AS INTEGER) AS exit_code,
    r.attributes['agenttrace.process.signal'] AS signal,
    coalesce(r.attributes['process.command_line'], r.attributes['process.command_args']) AS command,
    r.attributes['agenttrace.objective'] AS objective,
    CASE WHEN json_valid(r.attributes['agenttrace.objective'])
              AND json_type(r.attributes['agenttrace.objective']) = 'OBJECT'
         THEN CAST(r.attributes['agenttrace.objective'] AS JSON) END AS objective_json,
    TRY_CAST(r.attributes['agenttrace.run.agent_duration_s'] AS DOUBLE) AS agent_duration_s,
    r.span_id AS root_span_id,
    r.trace_id,
    r.service_name,
    t.span_count,
    t.unfinished_count,
    t.error_count,
    r.status_message,
    a.audit_reasons,
    r.run_id IN (SELECT run_id FROM supervised_runs) AS supervised,
    TRY_CAST(r.attributes['agenttrace.supervisor.pid'] AS BIGINT) AS supervisor_pid,
    r.attributes['agenttrace.gates'] AS recorded_gates
FROM roots r
JOIN totals t USING (run_id)
LEFT JOIN audits a USING (run_id);
