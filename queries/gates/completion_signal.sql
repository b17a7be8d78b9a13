-- description: The last LLM response was a real completion: not cut short, filtered, refused, an error or a request for a tool call; a model called over HTTP is described by an LLM step.
-- severity: error
-- applies: SELECT EXISTS (SELECT 1 FROM steps WHERE run_id = $run_id AND kind = 'llm') OR EXISTS (SELECT 1 FROM model_api_calls WHERE run_id = $run_id)
WITH last_llm AS (
    SELECT *
    FROM steps
    WHERE run_id = $run_id AND kind = 'llm'
    ORDER BY start_time DESC, step DESC
    LIMIT 1
),
-- The Responses API has no finish reason: a response cut off has status `incomplete` and says why
-- in `incomplete_details.reason` (max_output_tokens, content_filter), which the OpenAI SDK's span
-- records in its output. A framework that refuses the response (the OpenAI Agents SDK) ends its
-- own span in an error that quotes the reason: read there when the output was not recorded.
signalled AS (
    SELECT
        *,
        coalesce(
            finish_reason_raw,
            finish_reason,
            json_extract_string(TRY_CAST(output AS JSON), '$.incomplete_details.reason'),
            CASE WHEN status_code = 'Error' THEN
                nullif(regexp_extract(status_message, 'incomplete_details\W.{0,40}?\breason\W+(\w+)', 1), '')
            END
        ) AS _said
    FROM last_llm
),
-- A last response that asks for tool calls is no final answer: the model never saw the results
-- (the agent gave up, hit its loop or request limit, or failed there), whether or not the tools
-- then ran. A tool that is how the agent answers (pydantic-ai's `final_result`:
-- agent_answer_tools) is an answer, not a request.
verdict AS (
    SELECT
        v.*,
        lower(coalesce(v._said, '')) AS _reason,
        coalesce(v.finish_reason = 'tool_call', false)
            AND NOT EXISTS (
                SELECT 1 FROM agent_answer_tools a
                WHERE contains(coalesce(v.output, ''), '"' || a.tool_name || '"')) AS _tool_request,
        EXISTS (
            SELECT 1 FROM steps later
            WHERE later.run_id = v.run_id AND later.kind IN ('tool', 'process', 'agent', 'other')
              AND later.step > v.step) AS _ran_after
    FROM signalled v
),
-- A run with no LLM step that called a model API over HTTP (urllib, requests, a client no
-- instrumentor covers: the bootstrap and OpenTelemetry's HTTP instrumentations record the
-- request, with its path; the bootstrap's own LLM step of the answer, when the program read it to
-- its end, makes the run one with an LLM step; `model_api_calls` in agent_events.sql says which
-- requests are model calls) fails closed: nothing recorded says whether the model's last answer
-- was complete.
unseen_calls AS (
    SELECT span_id, start_time, call FROM model_api_calls
    WHERE run_id = $run_id AND NOT EXISTS (SELECT 1 FROM steps WHERE run_id = $run_id AND kind = 'llm')
),
unseen_answers AS (
    SELECT
        count(*) AS _calls,
        array_to_string(list_sort(list_distinct(list(call)))[1:3], ', ')
            || CASE WHEN count(DISTINCT call) > 3 THEN ', ...' ELSE '' END AS _what,
        arg_max(span_id, start_time) AS span_id
    FROM unseen_calls
    HAVING count(*) > 0
)
SELECT
    CASE
        WHEN _reason IN ('length', 'max_tokens', 'max_output_tokens')
            THEN 'the last LLM response was cut short (finish reason `' || _said || '`): the model stopped, but the answer is incomplete'
        WHEN _reason IN ('model_context_window_exceeded', 'context_length_exceeded')
            THEN 'the last LLM call ran out of context window (`' || _said || '`)'
        WHEN _reason IN ('content_filter', 'safety', 'recitation', 'blocklist', 'prohibited_content', 'spii')
            THEN 'the last LLM response was filtered (finish reason `' || _said || '`)'
        WHEN _reason = 'refusal'
            THEN 'the model refused in its last response (finish reason `refusal`)'
        WHEN _reason IN ('error', 'malformed_function_call') OR status_code = 'Error'
            THEN 'the last LLM call ended in an error' || coalesce(' (finish reason `' || _said || '`)', '')
        WHEN _tool_request AND NOT _ran_after
            THEN 'the last LLM response (step ' || step || ') asked for a tool call that never ran: '
                 || 'the run ended without the model''s final answer'
        WHEN _tool_request
            THEN 'the last LLM response (step ' || step || ') asked for a tool call, and the model never '
                 || 'saw its result: the run ended without the model''s final answer'
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
    'the agent called a model API over HTTP (' || _calls || CASE WHEN _calls = 1 THEN ' call: ' ELSE ' calls: ' END
        || _what || ') and no LLM step describes ' || CASE WHEN _calls = 1 THEN 'it' ELSE 'them' END
        || ': whether its last answer was complete cannot be '
        || 'checked; instrument the client (see README, "Python with no code change")' AS reason,
    span_id,
    NULL AS step,
    NULL AS model,
    NULL AS finish_reason
FROM unseen_answers;
