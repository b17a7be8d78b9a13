-- description: The last LLM response was a real completion: not cut short, filtered, refused, an error or a request for a tool call; a model called over HTTP is described by an LLM step.
-- severity: error
-- applies: SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = $run_id AND kind = 'llm') OR EXISTS (SELECT 1 FROM model_api_calls WHERE run_id = $run_id)
--
-- ClickHouse variant of queries/gates/completion_signal.sql (same columns, same reasons): see the
-- DuckDB file for what each part means. Why hand-written: DuckDB's list functions and slices
-- (`list_sort(list_distinct(list(call)))[1:3]`, `array_to_string`) are arraySlice / arraySort /
-- arrayDistinct / groupArray / arrayStringConcat here, and `->>` keeps DuckDB's NULL. ClickHouse
-- compiles a regex with `.` matching a newline (DuckDB's does not): `(?-s)` turns that off.
WITH last_llm AS (
    SELECT *
    FROM steps
    WHERE run_id = {run_id:String} AND kind = 'llm'
    ORDER BY start_time DESC, step DESC
    LIMIT 1
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
verdict AS (
    SELECT
        v.*,
        lower(coalesce(v._said, '')) AS _reason,
        coalesce(v.finish_reason = 'tool_call', false)
            AND NOT EXISTS (
                SELECT 1 FROM agent_answer_tools AS a
                WHERE position(coalesce(v.output, ''), concat('"', a.tool_name, '"')) > 0) AS _tool_request,
        EXISTS (
            SELECT 1 FROM steps AS later
            WHERE later.run_id = v.run_id AND later.kind IN ('tool', 'process', 'agent', 'other')
              AND later.step > v.step) AS _ran_after
    FROM signalled AS v
),
unseen_calls AS (
    SELECT span_id, start_time, call FROM model_api_calls
    WHERE run_id = {run_id:String} AND NOT EXISTS (SELECT 1 FROM steps WHERE run_id = {run_id:String} AND kind = 'llm')
),
unseen_answers AS (
    SELECT
        count() AS _calls,
        concat(arrayStringConcat(arraySlice(arraySort(arrayDistinct(groupArray(call))), 1, 3), ', '),
               if(uniqExact(call) > 3, ', ...', '')) AS _what,
        argMax(span_id, start_time) AS span_id
    FROM unseen_calls
    HAVING count() > 0
)
SELECT
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
    concat('the agent called a model API over HTTP (', toString(_calls), if(_calls = 1, ' call: ', ' calls: '),
        _what, ') and no LLM step describes ', if(_calls = 1, 'it', 'them'),
        ': whether its last answer was complete cannot be ',
        'checked; instrument the client (see README, "Python with no code change")') AS reason,
    span_id,
    NULL AS step,
    NULL AS model,
    NULL AS finish_reason
FROM unseen_answers
