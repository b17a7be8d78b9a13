-- All-runs form of queries/gates/unrecovered_errors.sql (from its transpiled ClickHouse form): every run in
-- {runs:Array(String)} at once. See the DuckDB file for the rules. What changes, run by run the same:
--   * `work` and `judged` are the per-run CTEs for all the runs (a step of another run is never a
--     process's, nor an agent span's, step: the joins and the NOT IN carry run_id);
--   * the answer exits are a set (IN), not a correlated EXISTS: the same answer, never NULL;
--   * "a later success of the same thing" is the latest success of each (run, same);
--   * "the model saw the failure, and a tool call or process after that succeeded": per run, M is the
--     latest successful tool call or process and L the latest successful LLM call before M; an LLM success
--     after the failure and before M exists exactly when L > the failure's start (the per-run
--     `min(saw) < max(after_it)`, without the failure-by-step pairs);
--   * those are window aggregates over `judged` (one pass: ClickHouse computes a CTE again wherever it is
--     read, and joins to per-run aggregates read it four times, twice as slow at 10,000 runs);
--   * "the run ends on a completion" is each run's last LLM step (`LIMIT 1 BY run_id`).
WITH work AS (
    SELECT
        s.run_id AS run_id,
        s.step AS step,
        s.kind AS kind,
        s.span_id AS span_id,
        s.start_time AS start_time,
        s.status_code AS status_code,
        CASE s.kind
            WHEN 'llm' THEN 'model ' || COALESCE(s.model, s.name)
            WHEN 'tool' THEN 'tool ' || COALESCE(s.tool_name, s.name)
            WHEN 'agent' THEN 'agent ' || s.name
            ELSE 'process ' || COALESCE(nullIf(nullIf(p.executable, ''), '?'), '(name not read: it ended too soon)')
        END AS what,
        COALESCE(s.status_message, '') AS message,
        COALESCE(p.exit_code, s.exit_code) AS exit_code,
        COALESCE(p.alive_at_exit, FALSE) AS alive_at_exit,
        COALESCE(p.executable, nullIf(REGEXP_EXTRACT(s.command, '^\\s*(?:\\S*/)?([^\\s/]+)', 1), '')) AS program
    FROM steps AS s
    LEFT JOIN processes AS p ON p.run_id = s.run_id AND p.span_id = s.span_id
    WHERE has({runs:Array(String)}, s.run_id) AND s.kind IN ('llm', 'tool', 'agent', 'process') AND s.ended
    UNION ALL
    SELECT
        a.run_id, NULL, 'agent', a.span_id AS span_id, a.start_time AS start_time, a.status_code AS status_code,
        'agent ' || a.name, COALESCE(a.status_message, ''), NULL, FALSE, NULL
    FROM spans AS a
    WHERE has({runs:Array(String)}, a.run_id) AND a.ended
      AND (a.attributes['gen_ai.operation.name'] IN ('invoke_agent', 'create_agent')
           OR a.attributes['openinference.span.kind'] = 'AGENT' OR a.attributes['traceloop.span.kind'] = 'agent')
      -- per run `NOT (a.span_id IN (SELECT span_id FROM steps WHERE run_id = ...))`: NULL (no row) for a
      -- span with no id; the steps' NULL ids are no member of the set
      AND a.span_id IS NOT NULL
      AND (a.run_id, assumeNotNull(a.span_id)) NOT IN (
          SELECT run_id, assumeNotNull(span_id) FROM steps
          WHERE has({runs:Array(String)}, run_id) AND span_id IS NOT NULL)
),
judged AS (
    SELECT
        w.*,
        toBool(w.status_code = 'Error'
               AND NOT (w.program IS NOT NULL AND w.exit_code IS NOT NULL
                        AND (assumeNotNull(w.program), assumeNotNull(w.exit_code))
                            IN (SELECT program, toInt32(exit_code) FROM answer_exits))
               AND NOT w.alive_at_exit) AS failed,
        CASE
            WHEN w.kind = 'llm' THEN 'llm'
            WHEN w.kind = 'process' AND COALESCE(w.program, '?') IN ('?', '') THEN NULL
            ELSE w.what
        END AS same
    FROM work AS w
),
-- per row: the latest success of the same thing (per run and `same`), M (the run's latest successful tool
-- call or process), then L (the run's latest successful LLM call before M): window aggregates, one pass
scored AS (
    SELECT
        j.*,
        if(j.same IS NULL, NULL, max(if(NOT j.failed, j.start_time, NULL)) OVER (PARTITION BY j.run_id, j.same)) AS _last_ok,
        max(if(j.kind IN ('tool', 'process') AND NOT j.failed, j.start_time, NULL)) OVER (PARTITION BY j.run_id) AS _m
    FROM judged AS j
),
bounded AS (
    SELECT
        s.*,
        max(if(s.kind = 'llm' AND NOT s.failed AND s.start_time < s._m, s.start_time, NULL)) OVER (PARTITION BY s.run_id) AS _l
    FROM scored AS s
),
ends_on_completion AS (
    SELECT run_id, COALESCE(toBool(finish_reason = 'stop' AND status_code IS DISTINCT FROM 'Error'), FALSE) AS yes
    FROM steps
    WHERE has({runs:Array(String)}, run_id) AND kind = 'llm'
    ORDER BY run_id, start_time DESC, step DESC
    LIMIT 1 BY run_id
)
SELECT
    f.run_id AS run_id,
    'the ' || f.what || ' failed' || COALESCE(' at step ' || f.step, '')
        || CASE WHEN f.message <> '' THEN ' (' || f.message || ')' ELSE '' END
        || ' and no later call of it succeeded' AS reason,
    f.span_id AS span_id,
    f.step AS step,
    f.what AS what
FROM (SELECT * FROM bounded WHERE failed) AS f
LEFT JOIN ends_on_completion AS e ON e.run_id = f.run_id
WHERE TRUE
  AND NOT COALESCE(f._last_ok > f.start_time, FALSE)
  AND NOT (f.kind IN ('tool', 'process') AND COALESCE(e.yes, FALSE) AND COALESCE(f._l > f.start_time, FALSE))
ORDER BY f.run_id, f.step
