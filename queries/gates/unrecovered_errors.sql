-- description: Every failed LLM call, tool call, agent or process was recovered: retried with success, or worked around by the model in a run that ends on a completion.
-- severity: error
-- applies: SELECT count(*) > 0 FROM steps WHERE run_id = $run_id AND kind IN ('llm', 'tool', 'agent', 'process')
--
-- The rules, as a person reading the reasons would apply them:
--   * a failure: a step that ended in an error (an LLM call, a tool call whose result says it
--     failed, an agent span the framework ended in an error such as "Max turns exceeded", a
--     process that exited non-zero or was killed); an exit code that is an answer (`grep` 1: no
--     match; the `answer_exits` table) is not one, nor is a process still running when the agent
--     exited (killed then: orphan_processes reports it);
--   * recovered by a retry: a later success of the same tool, agent or program; for an LLM call,
--     any later successful LLM call (a retried request's error span often lacks the model name);
--   * recovered by another route (a tool or a process the agent ran as one): the model saw the
--     failure (an LLM call that succeeded after it), a tool call or process after that succeeded,
--     and the run's last LLM response is a completion (finish reason `stop`).
WITH work AS (
    SELECT
        s.step,
        s.kind,
        s.span_id,
        s.start_time,
        s.status_code,
        CASE s.kind
            WHEN 'llm' THEN 'model ' || coalesce(s.model, s.name)
            WHEN 'tool' THEN 'tool ' || coalesce(s.tool_name, s.name)
            WHEN 'agent' THEN 'agent ' || s.name
            ELSE 'process ' || coalesce(nullif(nullif(p.executable, ''), '?'), '(name not read: it ended too soon)')
        END AS what,
        coalesce(s.status_message, '') AS message,
        coalesce(p.exit_code, s.exit_code) AS exit_code,
        coalesce(p.alive_at_exit, false) AS alive_at_exit,
        coalesce(p.executable, nullif(regexp_extract(s.command, '^\s*(?:\S*/)?([^\s/]+)', 1), '')) AS program
    FROM steps s  -- steps, not spans: a tool call a CLI agent only logged is a step with no span
    LEFT JOIN processes p ON p.run_id = s.run_id AND p.span_id = s.span_id
    WHERE s.run_id = $run_id AND s.kind IN ('llm', 'tool', 'agent', 'process') AND s.ended
    UNION ALL
    -- an agent span with the agent's calls in it is no step (steps.sql), but the framework ending
    -- it in an error is the framework's own verdict on the agent's work
    SELECT NULL, 'agent', a.span_id, a.start_time, a.status_code, 'agent ' || a.name,
           coalesce(a.status_message, ''), NULL, false, NULL
    FROM spans a
    WHERE a.run_id = $run_id AND a.ended
      AND (a.attributes['gen_ai.operation.name'] IN ('invoke_agent', 'create_agent')
           OR a.attributes['openinference.span.kind'] = 'AGENT' OR a.attributes['traceloop.span.kind'] = 'agent')
      AND a.span_id NOT IN (SELECT span_id FROM steps WHERE run_id = $run_id)
),
judged AS (
    SELECT
        w.*,
        w.status_code = 'Error'
            AND NOT EXISTS (SELECT 1 FROM answer_exits a WHERE a.program = w.program AND a.exit_code = w.exit_code)
            AND NOT w.alive_at_exit  -- still running when the agent exited: orphan_processes' to judge
            AS failed,
        CASE
            WHEN w.kind = 'llm' THEN 'llm'
            WHEN w.kind = 'process' AND coalesce(w.program, '?') IN ('?', '') THEN NULL  -- unnamed: no retry of anything
            ELSE w.what
        END AS same
    FROM work w
),
last_llm AS (
    SELECT finish_reason, status_code FROM steps
    WHERE run_id = $run_id AND kind = 'llm'
    ORDER BY start_time DESC, step DESC
    LIMIT 1
),
ends_on_completion AS (
    SELECT coalesce(bool_and(finish_reason = 'stop' AND status_code IS DISTINCT FROM 'Error'), false) AS yes
    FROM last_llm
)
SELECT
    'the ' || f.what || ' failed' || coalesce(' at step ' || f.step, '')
        || CASE WHEN f.message <> '' THEN ' (' || f.message || ')' ELSE '' END
        || ' and no later call of it succeeded' AS reason,
    f.span_id,
    f.step,
    f.what
FROM (SELECT * FROM judged WHERE failed) f  -- the failures first: the subqueries below run for these only
WHERE true
  -- (as maxima and minima, not EXISTS over pairs of steps: those joins grow with the square of
  -- the run's steps, 15 s for 17,600 steps)
  AND NOT coalesce(
      (SELECT max(later.start_time) FROM judged later WHERE later.same = f.same AND NOT later.failed)
          > f.start_time,
      false)
  AND NOT (
      f.kind IN ('tool', 'process') AND (SELECT yes FROM ends_on_completion)
      AND coalesce(
          (SELECT min(saw.start_time) FROM judged saw
           WHERE saw.kind = 'llm' AND saw.start_time > f.start_time AND NOT saw.failed)
              < (SELECT max(after_it.start_time) FROM judged after_it
                 WHERE after_it.kind IN ('tool', 'process') AND NOT after_it.failed),
          false)
  )
ORDER BY f.step;
