-- ClickHouse variant of queries/views/agent_events.sql (the source of truth: its comments say what
-- each view means; keep the two in step). A variant because the DuckDB file uses what ClickHouse
-- lacks: `VALUES ... AS t(cols)` tables (here arrays of typed tuples), a MACRO
-- (agenttrace_event_field, inlined: the first non-empty attribute of those agent_event_fields lists
-- for a field), TRY_CAST and `->>` semantics (spelled out below), and `CAST(map AS VARCHAR)` in
-- event_id (DuckDB's text of a MAP, written out here so that the ids are the same on both engines).

CREATE OR REPLACE VIEW agent_span_kinds AS
SELECT t.1 AS priority, t.2 AS service_like, t.3 AS span_name, t.4 AS when_key, t.5 AS when_value, t.6 AS kind
FROM (SELECT arrayJoin(CAST([
    (10, 'claude-code%', 'claude_code.interaction', NULL, NULL, 'container'),
    (20, 'codex%', 'codex.sampling', NULL, NULL, 'llm'),
    (21, 'codex%', NULL, 'codex.tool.phase', 'dispatch', 'tool'),
    (30, NULL, NULL, 'gen_ai.operation.name', 'llm_call', 'llm'),
    (31, NULL, NULL, 'gen_ai.operation.name', 'tool_call', 'tool')
], 'Array(Tuple(Int32, Nullable(String), Nullable(String), Nullable(String), Nullable(String), Nullable(String)))')) AS t);

CREATE OR REPLACE VIEW agent_unsent_parents AS
SELECT t.1 AS service_like, t.2 AS why
FROM (SELECT arrayJoin(CAST([
    ('codex%', 'Codex ends its session spans after its exporter has shut down')
], 'Array(Tuple(Nullable(String), Nullable(String)))')) AS t);

CREATE OR REPLACE VIEW agent_answer_tools AS
SELECT t.1 AS tool_name, t.2 AS why
FROM (SELECT arrayJoin(CAST([
    ('final_result', 'pydantic-ai: a structured output is the final_result tool call'),
    ('final_answer', 'smolagents: the final_answer tool ends the run')
], 'Array(Tuple(Nullable(String), Nullable(String)))')) AS t);

CREATE OR REPLACE VIEW agent_event_kinds AS
SELECT t.1 AS scope_like, t.2 AS event, t.3 AS when_key, t.4 AS when_value, t.5 AS requires, t.6 AS kind,
       t.7 AS phase, t.8 AS finish_reason, t.9 AS status
FROM (SELECT arrayJoin(CAST([
    ('com.anthropic.claude_code%', 'api_request', NULL, NULL, NULL, 'llm', 'whole', NULL, NULL),
    ('com.anthropic.claude_code%', 'api_error', NULL, NULL, NULL, 'llm', 'whole', 'error', 'Error'),
    ('com.anthropic.claude_code%', 'tool_decision', NULL, NULL, NULL, 'tool', 'start', NULL, NULL),
    ('com.anthropic.claude_code%', 'tool_result', NULL, NULL, NULL, 'tool', 'end', NULL, NULL),
    (NULL, 'codex.sse_event', 'event.kind', 'response.completed', 'input_token_count', 'llm', 'end', 'completed', NULL),
    (NULL, 'codex.sse_event', 'event.kind', 'response.incomplete', NULL, 'llm', 'end', 'max_output_tokens', NULL),
    (NULL, 'codex.sse_event', 'event.kind', 'response.failed', NULL, 'llm', 'end', 'error', 'Error'),
    (NULL, 'codex.tool_decision', NULL, NULL, NULL, 'tool', 'start', NULL, NULL),
    (NULL, 'codex.tool_result', NULL, NULL, NULL, 'tool', 'end', NULL, NULL),
    (NULL, 'gemini_cli.api_response', NULL, NULL, NULL, 'llm', 'whole', NULL, NULL),
    (NULL, 'gemini_cli.api_error', NULL, NULL, NULL, 'llm', 'whole', 'error', 'Error'),
    (NULL, 'gemini_cli.tool_call', NULL, NULL, NULL, 'tool', 'whole', NULL, NULL)
], 'Array(Tuple(Nullable(String), Nullable(String), Nullable(String), Nullable(String), Nullable(String), Nullable(String), Nullable(String), Nullable(String), Nullable(String)))')) AS t);

CREATE OR REPLACE VIEW agent_event_fields AS
SELECT t.1 AS field, t.2 AS priority, t.3 AS attribute
FROM (SELECT arrayJoin(CAST([
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
    ('input', 1, 'tool_input'), ('input', 2, 'arguments'), ('input', 3, 'function_args'),
    ('input', 4, 'tool_parameters'), ('input', 5, 'gen_ai.tool.call.arguments'), ('input', 6, 'request_text'),
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
], 'Array(Tuple(Nullable(String), Int32, Nullable(String)))')) AS t);

CREATE OR REPLACE VIEW agent_events AS
-- agent_events. Where DuckDB's semantics are spelled out:
--   agenttrace_event_field(attrs, f): arrayFilter over the attributes agent_event_fields lists for
--     f (in priority order), the first non-NULL, non-empty value ([1] of an empty array: NULL).
--   TRY_CAST(s AS BIGINT / INTEGER): DuckDB reads ' 12 ', '+5', and '12.5' (rounded half away from
--     zero: 13); NULL when out of range (`_ints`, one lambda for every integer field).
--   TRY_CAST(lower(s) AS BOOLEAN): true | t | 1 | yes | y, false | f | 0 | no | n.
--   json_extract_string(TRY_CAST(s AS JSON), '$.k'): NULL for text that is not JSON, a missing key
--     or a JSON null; a string unquoted, anything else as JSON text.
--   event_id: md5 of concat_ws('|', run_id, CAST(time AS VARCHAR), event, trace_id or '', span_id or
--     '', CAST(attributes AS VARCHAR)) as DuckDB writes them: the time as `YYYY-MM-DD hh:mm:ss`,
--     then the nanoseconds without trailing zeros (none at all when 0), then `+00`; the map as
--     `{k=v, k2=v2}` in its order, a NULL value as NULL, and a key or value quoted ('...', with
--     \' and \\ inside) when it is empty, starts or ends with a space, tab, LF, VT, FF or CR, is
--     `null` in any case, or holds one of "'(),:=[\]{} (DuckDB's NestedToVarcharCast).
WITH matched AS (
    SELECT
        l.run_id AS run_id, l.time AS time, l.trace_id AS trace_id, l.span_id AS span_id,
        l.attributes AS attributes, l.scope_name AS scope_name, l.service_name AS service_name,
        coalesce(l.attributes['event.name'], l.event_name) AS event,
        k.kind AS kind, k.phase AS phase, k.finish_reason AS _finish_const, k.status AS _status_const,
        row_number() OVER (
            PARTITION BY l.run_id, l.time, l.trace_id, l.span_id, mapKeys(l.attributes), mapValues(l.attributes)
            ORDER BY k.when_key IS NULL, k.requires IS NULL
        ) AS _rank
    FROM logs AS l
    INNER JOIN agent_event_kinds AS k ON coalesce(l.attributes['event.name'], l.event_name) = k.event
    WHERE (k.scope_like IS NULL OR l.scope_name LIKE k.scope_like)
      AND (k.when_key IS NULL OR l.attributes[ifNull(k.when_key, '')] = k.when_value)
      AND (k.requires IS NULL OR l.attributes[ifNull(k.requires, '')] IS NOT NULL)
),
fields AS (
    SELECT
        *,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'model') AS _k_model,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'tool_name') AS _k_tool_name,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'tool_call_id') AS _k_tool_call_id,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'input_tokens') AS _k_input_tokens,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'output_tokens') AS _k_output_tokens,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'cost_usd') AS _k_cost_usd,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'finish_reasons') AS _k_finish,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'input') AS _k_input,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'output') AS _k_output,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'success') AS _k_success,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'exit_code') AS _k_exit,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'metadata') AS _k_metadata,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'duration_ms') AS _k_duration_ms,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'decision') AS _k_decision,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'error') AS _k_error,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'http_status') AS _k_http_status,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'role') AS _k_role,
        (SELECT arrayMap(p -> p.2, arraySort(groupArray((priority, attribute)))) FROM agent_event_fields WHERE field = 'session_id') AS _k_session_id,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_model))[1] AS model,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_tool_name))[1] AS tool_name,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_tool_call_id))[1] AS tool_call_id,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_input_tokens))[1] AS _input_tokens,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_output_tokens))[1] AS _output_tokens,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_cost_usd))[1] AS _cost_usd,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_finish))[1] AS _finish,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_input))[1] AS input,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_output))[1] AS output,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_success))[1] AS _success,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_exit))[1] AS _exit,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_metadata))[1] AS _metadata,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_duration_ms))[1] AS _duration_ms,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_decision))[1] AS decision,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_error))[1] AS error,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_http_status))[1] AS _http_status,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_role))[1] AS role,
        arrayFilter(v -> v IS NOT NULL AND v != '', arrayMap(k -> attributes[ifNull(k, '')], _k_session_id))[1] AS session_id
    FROM matched
    WHERE _rank = 1
),
parsed AS (
    SELECT
        *,
        -- json_extract_string(TRY_CAST(_metadata AS JSON), '$.exitCode'): the text to read as an integer
        if(isValidJSON(_metadata) AND JSONType(_metadata, 'exitCode') != 'Null',
           if(JSONType(_metadata, 'exitCode') = 'String', JSONExtractString(_metadata, 'exitCode'), JSONExtractRaw(_metadata, 'exitCode')),
           NULL) AS _metadata_exit,
        nullif(extract(output, 'Process exited with code (-?[0-9]+)'), '') AS _output_exit,
        -- TRY_CAST(s AS BIGINT) of each: input_tokens, output_tokens, http_status, _exit, _metadata_exit, _output_exit
        arrayMap(s -> coalesce(
            toInt64OrNull(trimBoth(s, ' \t\n\x0B\f\r')),
            accurateCastOrNull(trunc(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r')))
                               + if(abs(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r')) - trunc(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r')))) >= 0.5,
                                    sign(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r'))), 0), 'Int64')),
            [_input_tokens, _output_tokens, _http_status, _exit, _metadata_exit, _output_exit]) AS _ints,
        -- TRY_CAST(s AS INTEGER): NULL out of its range
        arrayMap(v -> accurateCastOrNull(v, 'Int32'), _ints) AS _int32s
    FROM fields
),
derived AS (
    SELECT
        *,
        _ints[1] AS input_tokens,
        _ints[2] AS output_tokens,
        toFloat64OrNull(trimBoth(_cost_usd, ' \t\n\x0B\f\r')) AS cost_usd,
        multiIf(lower(_success) IN ('true', 't', '1', 'yes', 'y'), true,
                lower(_success) IN ('false', 'f', '0', 'no', 'n'), false,
                NULL) AS success,
        toFloat64OrNull(trimBoth(_duration_ms, ' \t\n\x0B\f\r')) AS duration_ms,
        _int32s[3] AS http_status,
        coalesce(_int32s[4], _int32s[5], _int32s[6]) AS exit_code,
        coalesce(
            if(isValidJSON(input) AND JSONType(input, 'command') != 'Null',
               if(JSONType(input, 'command') = 'String', JSONExtractString(input, 'command'), JSONExtractRaw(input, 'command')), NULL),
            if(isValidJSON(input) AND JSONType(input, 'cmd') != 'Null',
               if(JSONType(input, 'cmd') = 'String', JSONExtractString(input, 'cmd'), JSONExtractRaw(input, 'cmd')), NULL),
            if(isValidJSON(input) AND JSONType(input, 'full_command') != 'Null',
               if(JSONType(input, 'full_command') = 'String', JSONExtractString(input, 'full_command'), JSONExtractRaw(input, 'full_command')), NULL),
            if(isValidJSON(attributes['tool_parameters']) AND JSONType(attributes['tool_parameters'], 'full_command') != 'Null',
               if(JSONType(attributes['tool_parameters'], 'full_command') = 'String',
                  JSONExtractString(attributes['tool_parameters'], 'full_command'),
                  JSONExtractRaw(attributes['tool_parameters'], 'full_command')), NULL)
        ) AS command,
        coalesce(
            if(startsWith(trimLeft(_finish), '['),
               if(isValidJSON(_finish) AND JSONType(_finish, 1) != 'Null',
                  if(JSONType(_finish, 1) = 'String', JSONExtractString(_finish, 1), JSONExtractRaw(_finish, 1)), NULL),
               _finish),
            _finish_const
        ) AS finish_reason_raw
    FROM parsed
),
-- DuckDB's text of each key and value of the map, for event_id (see above)
quoted AS (
    SELECT
        *,
        arrayMap(s -> if(s IS NULL, 'NULL',
                         if(s = '' OR match(s, '^[\\t\\n\\x0B\\f\\r ]') OR match(s, '[\\t\\n\\x0B\\f\\r ]$')
                              OR lower(s) = 'null' OR match(s, '["\'(),:=\\[\\\\\\]{}]'),
                            concat('\'', replaceRegexpAll(s, '([\'\\\\])', '\\\\\\1'), '\''),
                            s)),
                 arrayConcat(CAST(mapKeys(attributes), 'Array(Nullable(String))'), mapValues(attributes))) AS _texts
    FROM derived
)
SELECT
    run_id,
    kind,
    event,
    phase,
    time,
    CASE WHEN phase = 'start' THEN time
         ELSE time - toIntervalMicrosecond(toInt64(
             trunc(coalesce(duration_ms, 0) * 1000)
             + if(abs(coalesce(duration_ms, 0) * 1000 - trunc(coalesce(duration_ms, 0) * 1000)) >= 0.5,
                  sign(coalesce(duration_ms, 0) * 1000), 0))) END AS start_time,
    CASE WHEN phase != 'start' THEN time END AS end_time,
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
        WHEN exit_code IS NOT NULL AND exit_code != 0 THEN 'Error'
        WHEN lower(decision) IN ('reject', 'rejected', 'deny', 'denied', 'abort', 'cancelled') THEN 'Error'
        WHEN http_status >= 400 THEN 'Error'
    END AS status_code,
    CASE
        WHEN _status_const = 'Error' THEN coalesce(error, event)
        WHEN success = false THEN coalesce(error, 'the agent reported the tool call failed')
        WHEN exit_code IS NOT NULL AND exit_code != 0 THEN concat('the command exited with code ', toString(exit_code))
        WHEN lower(decision) IN ('reject', 'rejected', 'deny', 'denied', 'abort', 'cancelled')
            THEN concat('the tool call was not allowed (decision ', decision, ')')
        WHEN http_status >= 400 THEN concat('the API answered HTTP ', toString(http_status))
    END AS status_message,
    substring(lower(hex(MD5(concat(
        run_id, '|',
        replaceRegexpOne(toString(time), '\\.?0+$', ''), '+00', '|',
        event, '|',
        coalesce(trace_id, ''), '|',
        coalesce(span_id, ''), '|',
        '{', arrayStringConcat(arrayMap(i -> concat(_texts[i], '=', _texts[i + length(attributes)]),
                                        range(1, length(attributes) + 1)), ', '), '}'
    )))), 1, 16) AS event_id
FROM quoted;

CREATE OR REPLACE VIEW model_api_paths AS
SELECT t.1 AS path_suffix, t.2 AS api, t.3 AS answers
FROM (SELECT arrayJoin(CAST([
    ('/chat/completions', 'OpenAI-compatible chat completions', true),
    ('/completions', 'OpenAI-compatible text completions', true),
    ('/responses', 'OpenAI Responses API', true),
    ('/v1/messages', 'Anthropic Messages API', true),
    (':generateContent', 'Gemini / Vertex AI', true),
    (':streamGenerateContent', 'Gemini / Vertex AI, streamed', true),
    ('/api/chat', 'Ollama chat', true),
    ('/api/generate', 'Ollama generate', true),
    ('/embeddings', 'OpenAI-compatible embeddings', false)
], 'Array(Tuple(Nullable(String), Nullable(String), Nullable(Bool)))')) AS t);

CREATE OR REPLACE VIEW model_api_calls AS
SELECT run_id, span_id, start_time, concat(_method, ' ', _path) AS call
FROM (
    SELECT
        run_id,
        span_id,
        start_time,
        upper(coalesce(attributes['http.request.method'], attributes['http.method'], 'POST')) AS _method,
        trimRight(extract(coalesce(
            attributes['url.path'],
            replaceRegexpOne(coalesce(attributes['url.full'], attributes['http.url']), '^\\w[\\w+.-]*://[^/?#]*', ''),
            attributes['http.target']), '^[^?#]*'), '/') AS _path
    FROM spans
) AS s
WHERE _method = 'POST'
  AND _path IS NOT NULL
  AND arrayExists(p -> endsWith(assumeNotNull(s._path), p),
                  (SELECT groupArray(assumeNotNull(path_suffix)) FROM model_api_paths WHERE answers AND path_suffix IS NOT NULL));
