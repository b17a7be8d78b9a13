-- What known agents report in their own names, mapped onto steps. Three small tables a user can
-- read and extend (add a row: no code changes), and the view `agent_events` built from them.
-- `steps` (steps.sql) reads all four.
--
-- agent_span_kinds: spans an agent names its own way, and the step kind they are. `service_like`
-- (a LIKE pattern on the span's service.name, NULL: any), `span_name` (NULL: any), `when_key` /
-- `when_value` (an attribute the span must have, with that value; a NULL value: any value). Kind
-- `container` means "never a step" (a turn, an interaction, a session: what holds the steps).
-- The first matching row (lowest `priority`) wins; spans no row matches are classified by the
-- conventions in steps.sql (OTel GenAI, OpenInference, OpenLLMetry, agenttrace's own).
CREATE OR REPLACE VIEW agent_span_kinds AS
SELECT * FROM (VALUES
    -- Claude Code: claude_code.interaction (gen_ai.operation.name invoke_agent) is one user turn
    -- holding the LLM requests and tool calls; claude_code.llm_request (chat) and claude_code.tool
    -- (execute_tool) are classified by the GenAI rules already.
    (10, 'claude-code%', 'claude_code.interaction', NULL, NULL, 'container'),
    -- Codex: one model request is `codex.sampling` (under try_run_sampling_request, beside
    -- stream_request / model_client.stream_responses_api and receiving_stream / handle_responses);
    -- its model and tokens come from Codex's log events (codex.sse_event response.completed).
    -- A tool call is the span named after the tool with codex.tool.phase = dispatch (exec_command
    -- for the shell), with tool_name and call_id.
    (20, 'codex%', 'codex.sampling', NULL, NULL, 'llm'),
    (21, 'codex%', NULL, 'codex.tool.phase', 'dispatch', 'tool'),
    -- Gemini CLI: gen_ai.operation.name llm_call / tool_call (no gen_ai.system);
    -- schedule_tool_calls holds the tool calls of one model response and is not a step.
    (30, NULL, NULL, 'gen_ai.operation.name', 'llm_call', 'llm'),
    (31, NULL, NULL, 'gen_ai.operation.name', 'tool_call', 'tool')
) AS t(priority, service_like, span_name, when_key, when_value, kind);

-- agent_unsent_parents: agents known to leave spans open, and so unsent, when they exit cleanly:
-- their last spans name a parent that never arrives. `service_like` is a LIKE pattern on the
-- service.name of the spans naming it. unfinished_spans does not count such a parent as work left
-- unfinished when the agent exited 0 and every span under it ended.
CREATE OR REPLACE VIEW agent_unsent_parents AS
SELECT * FROM (VALUES
    -- Codex 0.17x shuts its exporter down before its session spans end (seen in 1 of 24 clean
    -- sessions under load: session_task.run, op.dispatch.shutdown and 9 more name three parents
    -- never sent).
    ('codex%', 'Codex ends its session spans after its exporter has shut down')
) AS t(service_like, why);

-- agent_answer_tools: tools through which an agent gives its final answer (a structured answer as
-- a tool call), so a last LLM response calling one is an answer, not a request left unrun
-- (completion_signal).
CREATE OR REPLACE VIEW agent_answer_tools AS
SELECT * FROM (VALUES
    ('final_result', 'pydantic-ai: a structured output is the final_result tool call'),
    ('final_answer', 'smolagents: the final_answer tool ends the run')
) AS t(tool_name, why);

-- agent_event_kinds: log events (OTLP log records) that are LLM or tool calls. `event` is the
-- record's `event.name` attribute, else its event name; `scope_like` (a LIKE pattern on the
-- instrumentation scope, NULL: any) tells agents apart that use the same short names; `when_key`
-- / `when_value` narrow it to records with that attribute value, `requires` to records that have
-- that attribute at all. `phase`: `start` (the call began: a tool decision), `end` (it returned:
-- the record's time is its end), `whole` (it returned and says how long it took: `duration_ms`).
-- `finish_reason` / `status`: what the event itself says, when no attribute does.
-- Several records of one tool call (decision, result) are one call: they share a tool call id.
CREATE OR REPLACE VIEW agent_event_kinds AS
SELECT * FROM (VALUES
    -- Claude Code (scope com.anthropic.claude_code.events; event.name without a prefix)
    ('com.anthropic.claude_code%', 'api_request', NULL, NULL, NULL, 'llm', 'whole', NULL, NULL),
    ('com.anthropic.claude_code%', 'api_error', NULL, NULL, NULL, 'llm', 'whole', 'error', 'Error'),
    ('com.anthropic.claude_code%', 'tool_decision', NULL, NULL, NULL, 'tool', 'start', NULL, NULL),
    ('com.anthropic.claude_code%', 'tool_result', NULL, NULL, NULL, 'tool', 'end', NULL, NULL),
    -- Codex: one model response is the response.completed SSE event that carries the tokens
    -- (Codex logs response.completed twice, once without them); response.incomplete is a
    -- response cut off (Codex: "Incomplete response returned, reason: max_output_tokens").
    (NULL, 'codex.sse_event', 'event.kind', 'response.completed', 'input_token_count', 'llm', 'end', 'completed', NULL),
    (NULL, 'codex.sse_event', 'event.kind', 'response.incomplete', NULL, 'llm', 'end', 'max_output_tokens', NULL),
    (NULL, 'codex.sse_event', 'event.kind', 'response.failed', NULL, 'llm', 'end', 'error', 'Error'),
    (NULL, 'codex.tool_decision', NULL, NULL, NULL, 'tool', 'start', NULL, NULL),
    (NULL, 'codex.tool_result', NULL, NULL, NULL, 'tool', 'end', NULL, NULL),
    -- Gemini CLI: api_response is one model call, the model router's (role utility_router)
    -- included: DESIGN.md counts every LLM call as a step, and the router call is one (billed,
    -- with its own llm_call span). gemini_cli.tool_call is one whole tool call (it has no call id).
    (NULL, 'gemini_cli.api_response', NULL, NULL, NULL, 'llm', 'whole', NULL, NULL),
    (NULL, 'gemini_cli.api_error', NULL, NULL, NULL, 'llm', 'whole', 'error', 'Error'),
    (NULL, 'gemini_cli.tool_call', NULL, NULL, NULL, 'tool', 'whole', NULL, NULL)
) AS t(scope_like, event, when_key, when_value, requires, kind, phase, finish_reason, status);

-- agent_event_fields: where each field of a step is in a log event's attributes, in order of
-- preference (the first attribute present wins). The same list serves every event above.
CREATE OR REPLACE VIEW agent_event_fields AS
SELECT * FROM (VALUES
    ('model', 1, 'model'), ('model', 2, 'gen_ai.response.model'), ('model', 3, 'gen_ai.request.model'),
    ('tool_name', 1, 'tool_name'), ('tool_name', 2, 'function_name'), ('tool_name', 3, 'gen_ai.tool.name'),
    ('tool_call_id', 1, 'tool_use_id'), ('tool_call_id', 2, 'call_id'),
    ('tool_call_id', 3, 'gen_ai.tool.call.id'), ('tool_call_id', 4, 'gen_ai.tool.call_id'),
    ('input_tokens', 1, 'input_tokens'), ('input_tokens', 2, 'input_token_count'),
    ('input_tokens', 3, 'gen_ai.usage.input_tokens'),
    ('output_tokens', 1, 'output_tokens'), ('output_tokens', 2, 'output_token_count'),
    ('output_tokens', 3, 'gen_ai.usage.output_tokens'),
    ('cost_usd', 1, 'cost_usd'), ('cost_usd', 2, 'gen_ai.usage.cost'),
    ('finish_reasons', 1, 'finish_reasons'), ('finish_reasons', 2, 'gen_ai.response.finish_reasons'),
    ('finish_reasons', 3, 'stop_reason'),
    -- a tool call's arguments (JSON) and an LLM call's request
    ('input', 1, 'tool_input'), ('input', 2, 'arguments'), ('input', 3, 'function_args'),
    ('input', 4, 'tool_parameters'), ('input', 5, 'gen_ai.tool.call.arguments'), ('input', 6, 'request_text'),
    -- a tool call's result and an LLM call's response
    ('output', 1, 'output'), ('output', 2, 'tool_output'), ('output', 3, 'gen_ai.tool.call.result'),
    ('output', 4, 'response_text'), ('output', 5, 'response'),
    ('success', 1, 'success'),
    ('exit_code', 1, 'exit_code'), ('exit_code', 2, 'metadata.exitCode'), ('exit_code', 3, 'exitCode'),
    ('metadata', 1, 'metadata'),
    ('duration_ms', 1, 'duration_ms'),
    ('decision', 1, 'decision'),
    ('error', 1, 'error'), ('error', 2, 'error.message'), ('error', 3, 'error_message'),
    ('http_status', 1, 'status_code'), ('http_status', 2, 'http.response.status_code'),
    ('role', 1, 'role'),
    ('session_id', 1, 'session.id'), ('session_id', 2, 'conversation.id'), ('session_id', 3, 'gen_ai.conversation.id')
) AS t(field, priority, attribute);

-- The first attribute of `attrs` present among those agent_event_fields lists for `field`.
CREATE OR REPLACE MACRO agenttrace_event_field(attrs, f) AS
    list_filter(
        list_transform(
            (SELECT list(attribute ORDER BY priority) FROM agent_event_fields WHERE field = f),
            lambda k: attrs[k]),
        lambda v: v IS NOT NULL AND v <> '')[1];

-- agent_events: one row per log record that is (part of) an LLM or tool call, with its fields.
--   kind, phase, event          from agent_event_kinds
--   time                        the record's time (else the time it was observed)
--   start_time, end_time        start: the record's time for `start`, else time - duration_ms;
--                               end: the record's time for `end` and `whole`, NULL for `start`
--   success                     the agent's own success flag (NULL when it gives none)
--   exit_code                   a failed command's exit code: exit_code / metadata.exitCode
--                               attributes, else "Process exited with code N" in the output (Codex)
--   command                     the shell command in the arguments (command, cmd, full_command)
--   finish_reason_raw           the first finish reason as sent, else the event's own
--   status_code                 'Error' when the event is an error, the tool call failed
--                               (success false, exit code other than 0, a rejected decision) or
--                               the API answered an HTTP error; else NULL
--   event_id                    a stable id of the record
CREATE OR REPLACE VIEW agent_events AS
WITH matched AS (
    SELECT
        l.run_id, l.time, l.trace_id, l.span_id, l.attributes, l.scope_name, l.service_name,
        coalesce(l.attributes['event.name'], l.event_name) AS event,
        k.kind, k.phase, k.finish_reason AS _finish_const, k.status AS _status_const,
        row_number() OVER (
            PARTITION BY l.run_id, l.time, l.trace_id, l.span_id, hash(l.attributes)
            ORDER BY k.when_key IS NULL, k.requires IS NULL
        ) AS _rank
    FROM logs l
    JOIN agent_event_kinds k
      ON coalesce(l.attributes['event.name'], l.event_name) = k.event
     AND (k.scope_like IS NULL OR l.scope_name LIKE k.scope_like)
     AND (k.when_key IS NULL OR l.attributes[k.when_key] = k.when_value)
     AND (k.requires IS NULL OR l.attributes[k.requires] IS NOT NULL)
),
fields AS (
    SELECT
        *,
        agenttrace_event_field(attributes, 'model') AS model,
        agenttrace_event_field(attributes, 'tool_name') AS tool_name,
        agenttrace_event_field(attributes, 'tool_call_id') AS tool_call_id,
        TRY_CAST(agenttrace_event_field(attributes, 'input_tokens') AS BIGINT) AS input_tokens,
        TRY_CAST(agenttrace_event_field(attributes, 'output_tokens') AS BIGINT) AS output_tokens,
        TRY_CAST(agenttrace_event_field(attributes, 'cost_usd') AS DOUBLE) AS cost_usd,
        agenttrace_event_field(attributes, 'finish_reasons') AS _finish,
        agenttrace_event_field(attributes, 'input') AS input,
        agenttrace_event_field(attributes, 'output') AS output,
        TRY_CAST(lower(agenttrace_event_field(attributes, 'success')) AS BOOLEAN) AS success,
        agenttrace_event_field(attributes, 'exit_code') AS _exit,
        agenttrace_event_field(attributes, 'metadata') AS _metadata,
        TRY_CAST(agenttrace_event_field(attributes, 'duration_ms') AS DOUBLE) AS duration_ms,
        agenttrace_event_field(attributes, 'decision') AS decision,
        agenttrace_event_field(attributes, 'error') AS error,
        TRY_CAST(agenttrace_event_field(attributes, 'http_status') AS INTEGER) AS http_status,
        agenttrace_event_field(attributes, 'role') AS role,
        agenttrace_event_field(attributes, 'session_id') AS session_id
    FROM matched
    WHERE _rank = 1
),
derived AS (
    SELECT
        *,
        coalesce(
            TRY_CAST(_exit AS INTEGER),
            TRY_CAST(json_extract_string(TRY_CAST(_metadata AS JSON), '$.exitCode') AS INTEGER),
            TRY_CAST(nullif(regexp_extract(output, 'Process exited with code (-?[0-9]+)', 1), '') AS INTEGER)
        ) AS exit_code,
        coalesce(
            json_extract_string(TRY_CAST(input AS JSON), '$.command'),
            json_extract_string(TRY_CAST(input AS JSON), '$.cmd'),
            json_extract_string(TRY_CAST(input AS JSON), '$.full_command'),
            json_extract_string(TRY_CAST(attributes['tool_parameters'] AS JSON), '$.full_command')
        ) AS command,
        coalesce(
            CASE WHEN starts_with(ltrim(_finish), '[') THEN json_extract_string(_finish, '$[0]') ELSE _finish END,
            _finish_const
        ) AS finish_reason_raw
    FROM fields
)
SELECT
    run_id,
    kind,
    event,
    phase,
    time,
    CASE WHEN phase = 'start' THEN time
         ELSE time - to_microseconds(CAST(round(coalesce(duration_ms, 0) * 1000) AS BIGINT)) END AS start_time,
    CASE WHEN phase <> 'start' THEN time END AS end_time,
    trace_id,
    span_id,
    model,
    tool_name,
    tool_call_id,
    finish_reason_raw,
    input_tokens,
    output_tokens,
    cost_usd,
    input,
    output,
    command,
    success,
    exit_code,
    duration_ms,
    decision,
    role,
    session_id,
    CASE
        WHEN _status_const = 'Error' THEN 'Error'
        WHEN success = false THEN 'Error'
        WHEN exit_code IS NOT NULL AND exit_code <> 0 THEN 'Error'
        WHEN lower(decision) IN ('reject', 'rejected', 'deny', 'denied', 'abort', 'cancelled') THEN 'Error'
        WHEN http_status >= 400 THEN 'Error'
    END AS status_code,
    CASE
        WHEN _status_const = 'Error' THEN coalesce(error, event)
        WHEN success = false THEN coalesce(error, 'the agent reported the tool call failed')
        WHEN exit_code IS NOT NULL AND exit_code <> 0 THEN 'the command exited with code ' || exit_code
        WHEN lower(decision) IN ('reject', 'rejected', 'deny', 'denied', 'abort', 'cancelled')
            THEN 'the tool call was not allowed (decision ' || decision || ')'
        WHEN http_status >= 400 THEN 'the API answered HTTP ' || http_status
    END AS status_message,
    substr(md5(concat_ws('|', run_id, CAST(time AS VARCHAR), event, coalesce(trace_id, ''),
                         coalesce(span_id, ''), CAST(attributes AS VARCHAR))), 1, 16) AS event_id
FROM derived;

-- model_api_paths: how the path of a model API request ends (query string dropped). An HTTP
-- client span (`url.path`, `url.full`, `http.target` or `http.url`) of a POST to one of these is
-- a call of the agent to a model, whether or not an LLM step describes it: the zero-code
-- bootstrap records such requests made with urllib, urllib3 or requests
-- (`agenttrace.http.model_api`; its list, `MODEL_API_PATHS` in supervise/http_hook.py, is this
-- one), and any OpenTelemetry HTTP instrumentation records them too. `answers`: the endpoint
-- returns a model's answer, whose completeness `completion_signal` cannot check when no LLM step
-- describes the call (an embedding is no answer).
CREATE OR REPLACE VIEW model_api_paths AS
SELECT * FROM (VALUES
    ('/chat/completions', 'OpenAI-compatible chat completions', true),
    ('/completions', 'OpenAI-compatible text completions', true),
    ('/responses', 'OpenAI Responses API', true),
    ('/v1/messages', 'Anthropic Messages API', true),
    (':generateContent', 'Gemini / Vertex AI', true),
    (':streamGenerateContent', 'Gemini / Vertex AI, streamed', true),
    ('/api/chat', 'Ollama chat', true),
    ('/api/generate', 'Ollama generate', true),
    ('/embeddings', 'OpenAI-compatible embeddings', false)
) AS t(path_suffix, api, answers);

-- model_api_calls: one row per POST span to a path in model_api_paths that returns an answer, with
-- its path (url.path, else url.full / http.url less scheme and host, else http.target; without its
-- query string and a trailing slash) and `call` ("POST /v1/chat/completions").
CREATE OR REPLACE VIEW model_api_calls AS
SELECT run_id, span_id, start_time, _method || ' ' || _path AS call
FROM (
    SELECT
        run_id,
        span_id,
        start_time,
        upper(coalesce(attributes['http.request.method'], attributes['http.method'], 'POST')) AS _method,
        rtrim(regexp_extract(coalesce(
            attributes['url.path'],
            regexp_replace(coalesce(attributes['url.full'], attributes['http.url']), '^\w[\w+.-]*://[^/?#]*', ''),
            attributes['http.target']), '^[^?#]*'), '/') AS _path
    FROM spans
) s
WHERE _method = 'POST'
  AND EXISTS (SELECT 1 FROM model_api_paths m WHERE m.answers AND ends_with(s._path, m.path_suffix));
