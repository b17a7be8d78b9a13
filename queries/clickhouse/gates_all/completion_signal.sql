-- All-runs form of queries/gates/completion_signal.sql (from its ClickHouse variant,
-- queries/clickhouse/gates/completion_signal.sql): every run in {runs:Array(String)} at once. Each run's
-- last LLM step is `LIMIT 1 BY run_id`; "a later step ran" is the run's last such step (a join on run_id,
-- not a correlated EXISTS); the answer tools are one array; the HTTP calls are grouped by run.
WITH last_llm AS (
    SELECT *
    FROM steps
    WHERE has({runs:Array(String)}, run_id) AND kind = 'llm'
    ORDER BY run_id, start_time DESC, step DESC
    LIMIT 1 BY run_id
),
signalled AS (
    SELECT
        *,
        coalesce(
            finish_reason_raw,
            finish_reason,
            if(isValidJSON(output) AND JSONHas(output, 'incomplete_details', 'reason')
                   AND JSONType(output, 'incomplete_details', 'reason') != 'Null',
               JSONExtractString(output, 'incomplete_details', 'reason'), NULL),
            if(status_code = 'Error',
               nullIf(regexpExtract(status_message, '(?-s)incomplete_details\\W.{0,40}?\\breason\\W+(\\w+)', 1), ''),
               NULL)
        ) AS _said
    FROM last_llm
),
later_steps AS (
    SELECT run_id, max(step) AS _last_step
    FROM steps
    WHERE has({runs:Array(String)}, run_id) AND kind IN ('tool', 'process', 'agent', 'other')
    GROUP BY run_id
),
verdict AS (
    SELECT
        v.*,
        lower(coalesce(v._said, '')) AS _reason,
        coalesce(v.finish_reason = 'tool_call', false)
            AND NOT arrayExists(t -> position(coalesce(v.output, ''), concat('"', t, '"')) > 0,
                                (SELECT groupArray(tool_name) FROM agent_answer_tools)) AS _tool_request,
        coalesce(ls._last_step > v.step, false) AS _ran_after
    FROM signalled AS v
    LEFT JOIN later_steps AS ls ON ls.run_id = v.run_id
),
unseen_calls AS (
    SELECT run_id, span_id, start_time, call FROM model_api_calls
    WHERE has({runs:Array(String)}, run_id)
      AND run_id NOT IN (SELECT run_id FROM steps WHERE has({runs:Array(String)}, run_id) AND kind = 'llm')
),
unseen_answers AS (
    SELECT
        run_id,
        count() AS _calls,
        concat(arrayStringConcat(arraySlice(arraySort(arrayDistinct(groupArray(call))), 1, 3), ', '),
               if(uniqExact(call) > 3, ', ...', '')) AS _what,
        argMax(span_id, start_time) AS span_id
    FROM unseen_calls
    GROUP BY run_id
    HAVING count() > 0
)
SELECT run_id, reason, span_id, step, model, finish_reason
FROM (
    SELECT
        run_id,
        CASE
            WHEN _reason IN ('length', 'max_tokens', 'max_output_tokens')
                THEN concat('the last LLM response was cut short (finish reason `', _said, '`): the model stopped, but the answer is incomplete')
            WHEN _reason IN ('model_context_window_exceeded', 'context_length_exceeded')
                THEN concat('the last LLM call ran out of context window (`', _said, '`)')
            WHEN _reason IN ('content_filter', 'safety', 'recitation', 'blocklist', 'prohibited_content', 'spii')
                THEN concat('the last LLM response was filtered (finish reason `', _said, '`)')
            WHEN _reason = 'refusal'
                THEN 'the model refused in its last response (finish reason `refusal`)'
            WHEN _reason IN ('error', 'malformed_function_call') OR status_code = 'Error'
                THEN concat('the last LLM call ended in an error', coalesce(concat(' (finish reason `', _said, '`)'), ''))
            WHEN _tool_request AND NOT _ran_after
                THEN concat('the last LLM response (step ', toString(step), ') asked for a tool call that never ran: ',
                            'the run ended without the model''s final answer')
            WHEN _tool_request
                THEN concat('the last LLM response (step ', toString(step), ') asked for a tool call, and the model never ',
                            'saw its result: the run ended without the model''s final answer')
        END AS reason,
        span_id,
        step,
        model,
        _said AS finish_reason
    FROM verdict
    WHERE _reason IN ('length', 'max_tokens', 'max_output_tokens', 'model_context_window_exceeded',
                      'context_length_exceeded', 'content_filter', 'safety', 'recitation', 'blocklist',
                      'prohibited_content', 'spii', 'refusal', 'error', 'malformed_function_call')
       OR status_code = 'Error'
       OR _tool_request
    UNION ALL
    SELECT
        run_id,
        concat('the agent called a model API over HTTP (', toString(_calls), if(_calls = 1, ' call: ', ' calls: '),
            _what, ') and no LLM step describes ', if(_calls = 1, 'it', 'them'),
            ': whether its last answer was complete cannot be ',
            'checked; instrument the client (see README, "Python with no code change")') AS reason,
        span_id,
        NULL AS step,
        NULL AS model,
        NULL AS finish_reason
    FROM unseen_answers
) AS _u
-- a run has one row at most (the first branch needs an LLM step, the second a run without one)
ORDER BY run_id, reason, span_id, step, model, finish_reason
