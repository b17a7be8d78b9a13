-- ClickHouse variant of queries/views/steps.sql (the source of truth: its comments say what each
-- part means; keep the two in step). A variant because the DuckDB file uses what ClickHouse lacks:
-- two MACROs (agenttrace_finish_reason: `transform` here; agenttrace_prefixed_json: written out,
-- with DuckDB's JSON escapes), UNION ALL BY NAME (here by position, in the same order), `* EXCLUDE
-- ... REPLACE` (columns listed), a JSON path with `[*]`, correlated subqueries (here joins and
-- `IN` on uncorrelated ones), `UNION` in a recursive CTE (UNION ALL: agent_containers reads
-- work_lineage through DISTINCT), and TRY_CAST / `->>` / json_object / epoch_us semantics:
--   TRY_CAST(s AS BIGINT / INTEGER): DuckDB reads ' 12 ', '+5', and '12.5' (rounded half away from
--     zero: 13); NULL out of range (`_ints`, one lambda for every integer field).
--   TRY_CAST(lower(s) AS BOOLEAN): true | t | 1 | yes | y, false | f | 0 | no | n.
--   json_extract_string(TRY_CAST(s AS JSON), path): NULL for text that is not JSON, a missing path
--     or a JSON null; a string unquoted, anything else as JSON text.
--   epoch_us(CAST(t AS TIMESTAMPTZ)): DuckDB rounds the nanoseconds to microseconds, half up.
--   to_json of a map: `{"k":"v","k2":null}`, escaping " \ and control characters (\b \t \n \f \r,
--     else \u00XX), nothing else.
-- ClickHouse inlines every CTE where it is read (as one view: "Query tree is too big"): the CTEs
-- read many times are views of their own here, computed once each (temporary tables):
-- _steps_classified (classified), _steps_projected (process_lineage .. projected),
-- _steps_llm_ranked (llm_lineage .. llm_ranked), _steps_span_steps (same_call_dropped .. span_steps).
CREATE OR REPLACE VIEW _steps_classified AS
    SELECT
        s.*,
        attributes['gen_ai.operation.name'] AS _op,
        attributes['openinference.span.kind'] AS _oi,
        attributes['traceloop.span.kind'] AS _tl,
        CASE
            WHEN _mapped = 'container' THEN NULL
            WHEN _mapped IS NOT NULL THEN _mapped
            WHEN attributes['agenttrace.span.type'] = 'process' THEN 'process'
            WHEN attributes['agenttrace.span.type'] = 'verify' THEN 'verify'
            WHEN attributes['agenttrace.span.type'] = 'step' THEN coalesce(attributes['agenttrace.step.kind'], 'other')
            WHEN attributes['gen_ai.operation.name'] IN ('chat', 'text_completion', 'generate_content', 'embeddings')
              OR attributes['openinference.span.kind'] IN ('LLM', 'EMBEDDING')
              OR attributes['llm.request.type'] IS NOT NULL THEN 'llm'
            WHEN attributes['gen_ai.operation.name'] = 'execute_tool'
              OR attributes['openinference.span.kind'] IN ('TOOL', 'RETRIEVER')
              OR attributes['traceloop.span.kind'] = 'tool' THEN 'tool'
            WHEN attributes['gen_ai.operation.name'] IN ('invoke_agent', 'create_agent', 'plan')
              OR attributes['openinference.span.kind'] = 'AGENT'
              OR attributes['traceloop.span.kind'] = 'agent' THEN 'agent'
            WHEN attributes['gen_ai.operation.name'] IS NULL
              AND coalesce(attributes['gen_ai.system'], attributes['gen_ai.provider.name']) IS NOT NULL
              AND attributes['gen_ai.request.model'] IS NOT NULL THEN 'llm'
        END AS _kind
    FROM (
        -- the first row of agent_span_kinds (by priority) the span matches
        SELECT
            sp.*,
            arrayFirst(m -> ifNull((m.2 IS NULL OR sp.service_name LIKE m.2)
                                   AND (m.3 IS NULL OR sp.name = m.3)
                                   AND (m.4 IS NULL OR sp.attributes[ifNull(m.4, '')] = coalesce(m.5, sp.attributes[ifNull(m.4, '')])), 0),
                       (SELECT arraySort(r -> r.1, groupArray((priority, service_like, span_name, when_key, when_value, kind)))
                        FROM agent_span_kinds)).6 AS _mapped
        FROM spans AS sp
    ) AS s;

CREATE OR REPLACE VIEW _steps_projected AS
WITH RECURSIVE classified AS (SELECT * FROM _steps_classified),
process_lineage AS (
    SELECT c.run_id AS run_id, c.span_id AS process_id,
           coalesce(if(d.span_id != c.span_id, d.trace_id, NULL), c.trace_id) AS above_trace_id,
           coalesce(if(d.span_id != c.span_id, d.span_id, NULL), c.parent_span_id) AS above_id,
           toInt32(1) AS depth
    FROM classified AS c
    LEFT JOIN classified AS d
      ON d.run_id = c.run_id
     AND d.trace_id = c.attributes['agenttrace.process.traceparent.trace_id']
     AND d.span_id = c.attributes['agenttrace.process.traceparent.span_id']
    WHERE c._kind = 'process'
    UNION ALL
    SELECT l.run_id AS run_id, l.process_id AS process_id, x.trace_id AS above_trace_id, x.parent_span_id AS above_id,
           toInt32(l.depth + 1) AS depth
    FROM process_lineage AS l
    INNER JOIN classified AS x ON x.run_id = l.run_id AND x.trace_id = l.above_trace_id AND x.span_id = l.above_id
    WHERE x._kind IS NULL AND x.parent_span_id IS NOT NULL AND l.depth < 64
),
work_lineage AS (
    SELECT run_id, trace_id, parent_span_id AS above_id, toInt32(1) AS depth
    FROM classified
    WHERE _kind IN ('llm', 'tool') AND parent_span_id IS NOT NULL
    UNION ALL
    SELECT l.run_id AS run_id, l.trace_id AS trace_id, x.parent_span_id AS above_id, toInt32(l.depth + 1) AS depth
    FROM work_lineage AS l
    INNER JOIN classified AS x ON x.run_id = l.run_id AND x.trace_id = l.trace_id AND x.span_id = l.above_id
    WHERE x.parent_span_id IS NOT NULL AND l.depth < 64
),
agent_containers AS (
    SELECT DISTINCT c.run_id AS run_id, c.span_id AS span_id
    FROM classified AS c
    INNER JOIN work_lineage AS l ON l.run_id = c.run_id AND l.trace_id = c.trace_id AND l.above_id = c.span_id
    WHERE c._kind = 'agent'
),
root_processes AS (
    SELECT c.run_id AS run_id, c.span_id AS span_id
    FROM classified AS c
    INNER JOIN classified AS p ON p.run_id = c.run_id AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    WHERE c._kind = 'process'
      AND p.attributes['agenttrace.span.type'] = 'run'
      AND c.attributes['process.parent_pid']
          = coalesce(p.attributes['agenttrace.supervisor.pid'], p.attributes['process.pid'])
),
shell_agents AS (
    SELECT DISTINCT r.run_id AS run_id
    FROM root_processes AS r
    INNER JOIN classified AS c ON c.run_id = r.run_id AND c.span_id = r.span_id
    WHERE replaceRegexpOne(coalesce(c.attributes['process.executable.name'], ''), '^.*/', '')
              IN ('sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'fish', 'ash', 'busybox')
       OR (r.run_id NOT IN (SELECT run_id FROM classified WHERE _kind IN ('llm', 'tool') AND run_id IS NOT NULL)
           AND r.run_id NOT IN (SELECT run_id FROM agent_events WHERE run_id IS NOT NULL))
),
-- the processes under a step of another kind than `agent` (DuckDB: candidates' correlated EXISTS)
processes_in_steps AS (
    SELECT DISTINCT l.run_id AS run_id, l.process_id AS process_id
    FROM process_lineage AS l
    INNER JOIN classified AS a ON a.run_id = l.run_id AND a.trace_id = l.above_trace_id AND a.span_id = l.above_id
    WHERE a._kind IS NOT NULL AND a._kind != 'agent'
      AND NOT ((l.run_id, a.span_id) IN (SELECT run_id, span_id FROM root_processes)
               AND l.run_id IN (SELECT run_id FROM shell_agents))
),
candidates AS (
    SELECT c.*
    FROM classified AS c
    WHERE c._kind IS NOT NULL
      AND NOT (c._kind = 'process' AND (c.run_id, c.span_id) IN (SELECT run_id, process_id FROM processes_in_steps))
      AND (c.run_id, c.span_id) NOT IN (SELECT run_id, span_id FROM root_processes)
      AND (c.run_id, c.span_id) NOT IN (SELECT run_id, span_id FROM agent_containers)
      AND NOT coalesce(c._kind = 'process' AND c.attributes['agenttrace.process.source'] = 'watcher'
          AND (c.run_id, c.span_id) NOT IN (SELECT run_id, span_id FROM processes),
          false)
),
normalised AS (
    SELECT
        *,
        coalesce(
            attributes['gen_ai.response.finish_reasons'],
            attributes['llm.finish_reason'],
            attributes['llm.response.finish_reason'],
            attributes['gen_ai.completion.0.finish_reason']
        ) AS _finish_raw,
        -- CASE WHEN starts_with(ltrim(_finish_raw), '[') THEN json_extract_string(_finish_raw, '$[0]') ELSE _finish_raw END
        if(startsWith(trimLeft(_finish_raw), '['),
           if(isValidJSON(_finish_raw) AND JSONType(_finish_raw, 1) != 'Null',
              if(JSONType(_finish_raw, 1) = 'String', JSONExtractString(_finish_raw, 1), JSONExtractRaw(_finish_raw, 1)), NULL),
           _finish_raw) AS _finish_first,
        -- agenttrace_prefixed_json(attributes, p) for each p
        arrayMap(p -> if(arrayExists(k -> startsWith(k, p), mapKeys(attributes)),
                         concat('{', arrayStringConcat(arrayMap((k, v) -> concat(
                             '"', arrayStringConcat(arrayMap(ch -> multiIf(ch = '"', '\\"', ch = '\\', '\\\\', ch = '\b', '\\b',
                                 ch = '\t', '\\t', ch = '\n', '\\n', ch = '\f', '\\f', ch = '\r', '\\r',
                                 ch < ' ', concat('\\u00', hex(ch)), ch), splitByString('', k))), '":',
                             if(v IS NULL, 'null', concat(
                                 '"', arrayStringConcat(arrayMap(ch -> multiIf(ch = '"', '\\"', ch = '\\', '\\\\', ch = '\b', '\\b',
                                     ch = '\t', '\\t', ch = '\n', '\\n', ch = '\f', '\\f', ch = '\r', '\\r',
                                     ch < ' ', concat('\\u00', hex(ch)), ch), splitByString('', assumeNotNull(v)))), '"'))),
                             mapKeys(mapFilter((k, v) -> startsWith(k, p), attributes)),
                             mapValues(mapFilter((k, v) -> startsWith(k, p), attributes))), ','), '}'),
                         NULL),
                 ['llm.input_messages.', 'gen_ai.prompt.', 'llm.output_messages.', 'gen_ai.completion.']) AS _prefixed,
        -- TRY_CAST(s AS BIGINT) of input tokens, output tokens, exit_code
        arrayMap(s -> coalesce(
            toInt64OrNull(trimBoth(s, ' \t\n\x0B\f\r')),
            accurateCastOrNull(trunc(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r')))
                               + if(abs(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r')) - trunc(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r')))) >= 0.5,
                                    sign(toFloat64OrNull(trimBoth(s, ' \t\n\x0B\f\r'))), 0), 'Int64')),
            [coalesce(attributes['gen_ai.usage.input_tokens'], attributes['gen_ai.usage.prompt_tokens'],
                      attributes['llm.token_count.prompt'], attributes['llm.usage.prompt_tokens']),
             coalesce(attributes['gen_ai.usage.output_tokens'], attributes['gen_ai.usage.completion_tokens'],
                      attributes['llm.token_count.completion'], attributes['llm.usage.completion_tokens']),
             attributes['exit_code']]) AS _ints
    FROM candidates
),
projected AS (
SELECT
    run_id,
    _kind AS kind,
    name,
    span_id,
    parent_span_id,
    start_time,
    end_time,
    status_code,
    CASE WHEN _kind = 'llm' THEN coalesce(
        attributes['gen_ai.response.model'], attributes['gen_ai.request.model'],
        attributes['llm.response.model_name'], attributes['llm.model_name'], attributes['llm.request.model_name'],
        attributes['llm.response.model'], attributes['llm.request.model'])
    END AS model,
    CASE WHEN _kind = 'tool' THEN coalesce(
        attributes['gen_ai.tool.name'], attributes['tool.name'], attributes['traceloop.entity.name'],
        attributes['tool_name'], nullif(extract(name, '^execute_tool (.+)$'), ''))
    END AS tool_name,
    coalesce(attributes['gen_ai.tool.call.id'], attributes['tool.id'], attributes['tool_call.id'],
             attributes['gen_ai.tool.call_id'],
             CASE WHEN _kind = 'tool' THEN coalesce(attributes['tool_use_id'], attributes['call_id']) END) AS tool_call_id,
    -- agenttrace_finish_reason
    transform(lower(_finish_first),
              ['tool_calls', 'tool_use', 'function_call', 'end_turn', 'stop_sequence', 'max_tokens', 'max_output_tokens', 'completed', 'safety'],
              ['tool_call', 'tool_call', 'tool_call', 'stop', 'stop', 'length', 'length', 'stop', 'content_filter'],
              lower(_finish_first)) AS finish_reason,
    _ints[1] AS input_tokens,
    _ints[2] AS output_tokens,
    CASE _kind
        WHEN 'llm' THEN coalesce(
            attributes['gen_ai.input.messages'], attributes['input.value'], attributes['gen_ai.prompt'],
            _prefixed[1], _prefixed[2])
        WHEN 'tool' THEN coalesce(
            attributes['gen_ai.tool.call.arguments'], attributes['input.value'],
            attributes['traceloop.entity.input'], attributes['tool.parameters'], attributes['gen_ai.input.messages'])
        WHEN 'process' THEN coalesce(attributes['process.command_line'], attributes['process.command_args'])
        ELSE coalesce(attributes['input.value'], attributes['traceloop.entity.input'])
    END AS input,
    CASE _kind
        WHEN 'llm' THEN coalesce(
            attributes['gen_ai.output.messages'], attributes['output.value'], attributes['gen_ai.completion'],
            _prefixed[3], _prefixed[4])
        WHEN 'tool' THEN coalesce(
            attributes['gen_ai.tool.call.result'], attributes['output.value'], attributes['traceloop.entity.output'],
            attributes['gen_ai.output.messages'])
        WHEN 'process' THEN attributes['process.exit.code']
        ELSE coalesce(attributes['output.value'], attributes['traceloop.entity.output'])
    END AS output,
    CASE WHEN _kind = 'llm' THEN toFloat64OrNull(trimBoth(coalesce(
        attributes['llm.cost.total'], attributes['gen_ai.usage.cost']), ' \t\n\x0B\f\r'))
    END AS cost_usd,
    CASE WHEN _finish_raw IS NOT NULL THEN _finish_first END AS finish_reason_raw,
    coalesce(attributes['gen_ai.provider.name'], attributes['gen_ai.system'], attributes['llm.provider'],
             attributes['llm.system']) AS provider,
    status_message,
    ended,
    duration_ms,
    trace_id,
    CASE WHEN _kind = 'tool' THEN coalesce(
        attributes['full_command'],
        if(isValidJSON(attributes['gen_ai.tool.call.arguments']) AND JSONType(attributes['gen_ai.tool.call.arguments'], 'command') != 'Null',
           if(JSONType(attributes['gen_ai.tool.call.arguments'], 'command') = 'String',
              JSONExtractString(attributes['gen_ai.tool.call.arguments'], 'command'),
              JSONExtractRaw(attributes['gen_ai.tool.call.arguments'], 'command')), NULL),
        if(isValidJSON(attributes['gen_ai.input.messages']) AND JSONType(attributes['gen_ai.input.messages'], 'args', 'command') != 'Null',
           if(JSONType(attributes['gen_ai.input.messages'], 'args', 'command') = 'String',
              JSONExtractString(attributes['gen_ai.input.messages'], 'args', 'command'),
              JSONExtractRaw(attributes['gen_ai.input.messages'], 'args', 'command')), NULL))
    END AS command,
    CASE WHEN _kind = 'tool' THEN multiIf(lower(attributes['success']) IN ('true', 't', '1', 'yes', 'y'), true,
                                          lower(attributes['success']) IN ('false', 'f', '0', 'no', 'n'), false,
                                          NULL) END AS success,
    CASE WHEN _kind = 'tool' THEN accurateCastOrNull(_ints[3], 'Int32') END AS exit_code
FROM normalised
)
SELECT * FROM projected;

CREATE OR REPLACE VIEW _steps_llm_ranked AS
WITH RECURSIVE classified AS (SELECT * FROM _steps_classified),
projected AS (SELECT * FROM _steps_projected),
llm_lineage AS (
    SELECT run_id, trace_id, span_id AS inner_id, parent_span_id AS outer_id, toInt32(1) AS depth, CAST(false AS Bool) AS crossed
    FROM classified
    WHERE _kind = 'llm' AND parent_span_id IS NOT NULL
    UNION ALL
    SELECT l.run_id AS run_id, l.trace_id AS trace_id, l.inner_id AS inner_id, c.parent_span_id AS outer_id,
           toInt32(l.depth + 1) AS depth, CAST(l.crossed OR coalesce(c._kind != 'llm', false) AS Bool) AS crossed
    FROM llm_lineage AS l
    INNER JOIN classified AS c ON c.run_id = l.run_id AND c.trace_id = l.trace_id AND c.span_id = l.outer_id
    WHERE c.parent_span_id IS NOT NULL AND l.depth < 64
),
llm_calls AS (
    SELECT
        *,
        toInt32(model IS NOT NULL) + toInt32(input_tokens IS NOT NULL)
            + toInt32(output_tokens IS NOT NULL) + toInt32(finish_reason_raw IS NOT NULL) AS _richness
    FROM projected
    WHERE kind = 'llm'
),
llm_nesting AS (
    SELECT l.run_id AS run_id, l.outer_id AS outer_id, l.inner_id AS inner_id, l.depth AS dist
    FROM llm_lineage AS l
    INNER JOIN llm_calls AS o ON o.run_id = l.run_id AND o.trace_id = l.trace_id AND o.span_id = l.outer_id
    WHERE NOT l.crossed
    UNION ALL
    SELECT o.run_id AS run_id, o.span_id AS outer_id, i.span_id AS inner_id, toInt32(1) AS dist
    FROM llm_calls AS o
    INNER JOIN llm_calls AS i ON i.run_id = o.run_id AND i.trace_id = o.trace_id
    WHERE i.span_id != o.span_id
      AND i.start_time >= o.start_time - INTERVAL 1 MILLISECOND AND i.end_time <= o.end_time + INTERVAL 1 MILLISECOND
      AND i.start_time < o.end_time
      AND i.input_tokens = o.input_tokens AND i.output_tokens = o.output_tokens
      AND (i.model = o.model OR i.model IS NULL OR o.model IS NULL)
      AND (i.start_time > o.start_time OR (i.start_time = o.start_time AND (i.end_time < o.end_time
           OR (i.end_time = o.end_time AND i.span_id > o.span_id))))
      AND (o.run_id, i.span_id, o.span_id) NOT IN (SELECT run_id, inner_id, outer_id FROM llm_lineage)
      AND (o.run_id, o.span_id, i.span_id) NOT IN (SELECT run_id, inner_id, outer_id FROM llm_lineage)
),
llm_reach AS (
    SELECT run_id, outer_id, inner_id, dist FROM llm_nesting
    UNION ALL
    SELECT r.run_id AS run_id, r.outer_id AS outer_id, n.inner_id AS inner_id, toInt32(r.dist + n.dist) AS dist
    FROM llm_reach AS r
    INNER JOIN llm_nesting AS n ON n.run_id = r.run_id AND n.outer_id = r.inner_id
    WHERE r.dist < 64
),
llm_requests AS (
    SELECT c.run_id AS run_id, c.span_id AS span_id
    FROM llm_calls AS c
    WHERE (c.run_id, c.span_id) NOT IN (SELECT run_id, outer_id FROM llm_reach)
),
llm_over AS (
    SELECT r.run_id AS run_id, r.outer_id AS span_id, count(DISTINCT r.inner_id) AS requests,
           min(r.inner_id) AS request_id, min(r.dist) AS dist
    FROM llm_reach AS r
    INNER JOIN llm_requests AS q ON q.run_id = r.run_id AND q.span_id = r.inner_id
    GROUP BY r.run_id, r.outer_id
),
llm_members AS (
    SELECT
        c.*,
        CASE WHEN o.span_id IS NULL THEN c.span_id WHEN o.requests = 1 THEN o.request_id END AS _request_id,
        coalesce(o.dist, 0) AS _dist
    FROM llm_calls AS c
    LEFT JOIN llm_over AS o ON o.run_id = c.run_id AND o.span_id = c.span_id
),
llm_ranked AS (
    SELECT
        *,
        _request_id IS NOT NULL AND _row = 1 AS _kept
    FROM (
        SELECT *, row_number() OVER (PARTITION BY run_id, _request_id ORDER BY _richness DESC, _dist, span_id) AS _row
        FROM llm_members
    )
)
SELECT * FROM llm_ranked;

CREATE OR REPLACE VIEW _steps_span_steps AS
WITH projected AS (SELECT * FROM _steps_projected),
llm_ranked AS (SELECT * FROM _steps_llm_ranked),
same_call_dropped AS (
    SELECT run_id, span_id FROM llm_ranked WHERE NOT _kept
),
same_call_merged AS (
    SELECT
        k.run_id AS run_id,
        k.span_id AS span_id,
        anyIf(d.model, d.model IS NOT NULL) AS model,
        anyIf(d.finish_reason, d.finish_reason IS NOT NULL) AS finish_reason,
        anyIf(d.finish_reason_raw, d.finish_reason_raw IS NOT NULL) AS finish_reason_raw,
        anyIf(d.input_tokens, d.input_tokens IS NOT NULL) AS input_tokens,
        anyIf(d.output_tokens, d.output_tokens IS NOT NULL) AS output_tokens,
        anyIf(d.cost_usd, d.cost_usd IS NOT NULL) AS cost_usd,
        anyIf(d.provider, d.provider IS NOT NULL) AS provider,
        anyIf(d.input, d.input IS NOT NULL) AS input,
        anyIf(d.output, d.output IS NOT NULL) AS output,
        anyIf(toNullable(coalesce(d.status_message, '')), d.status_code = 'Error') AS error_message
    FROM llm_ranked AS k
    INNER JOIN llm_ranked AS d ON d.run_id = k.run_id AND d._request_id = k._request_id
    WHERE k._kept AND NOT d._kept
    GROUP BY k.run_id, k.span_id
),
span_steps AS (
SELECT
    p.run_id AS run_id,
    p.kind AS kind,
    p.name AS name,
    p.span_id AS span_id,
    p.parent_span_id AS parent_span_id,
    p.start_time AS start_time,
    p.end_time AS end_time,
    CASE WHEN m.error_message IS NOT NULL THEN 'Error' ELSE p.status_code END AS status_code,
    coalesce(p.model, m.model) AS model,
    p.tool_name AS tool_name,
    p.tool_call_id AS tool_call_id,
    coalesce(p.finish_reason, m.finish_reason) AS finish_reason,
    coalesce(p.input_tokens, m.input_tokens) AS input_tokens,
    coalesce(p.output_tokens, m.output_tokens) AS output_tokens,
    coalesce(p.input, m.input) AS input,
    coalesce(p.output, m.output) AS output,
    coalesce(p.cost_usd, m.cost_usd) AS cost_usd,
    coalesce(p.finish_reason_raw, m.finish_reason_raw) AS finish_reason_raw,
    coalesce(p.provider, m.provider) AS provider,
    CASE WHEN m.error_message IS NOT NULL AND (p.status_code IS NULL OR p.status_code != 'Error')
         THEN nullif(m.error_message, '') ELSE p.status_message END AS status_message,
    p.ended AS ended,
    p.duration_ms AS duration_ms,
    p.trace_id AS trace_id,
    p.command AS command,
    p.success AS success,
    p.exit_code AS exit_code
FROM projected AS p
LEFT JOIN same_call_merged AS m ON m.run_id = p.run_id AND m.span_id = p.span_id
WHERE (p.run_id, p.span_id) NOT IN (SELECT run_id, span_id FROM same_call_dropped)
)
SELECT * FROM span_steps;

CREATE OR REPLACE VIEW steps AS
WITH span_steps AS (SELECT * FROM _steps_span_steps),
logged AS (
    SELECT
        run_id,
        coalesce(CASE WHEN kind = 'tool' THEN tool_call_id END, event_id) AS _call,
        any(kind) AS kind,
        argMax(event, time) AS name,
        min(event_id) AS event_id,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        CAST(max(phase != 'start') AS Bool) AS ended,
        argMin(trace_id, time) AS trace_id,
        argMin(span_id, time) AS log_span_id,
        groupUniqArrayIf(span_id, span_id IS NOT NULL) AS log_span_ids,
        anyIf(model, model IS NOT NULL AND kind = 'llm') AS model,
        anyIf(tool_name, tool_name IS NOT NULL) AS tool_name,
        anyIf(tool_call_id, tool_call_id IS NOT NULL) AS tool_call_id,
        argMaxIf(finish_reason_raw, time, finish_reason_raw IS NOT NULL) AS finish_reason_raw,
        anyIf(input_tokens, input_tokens IS NOT NULL) AS input_tokens,
        anyIf(output_tokens, output_tokens IS NOT NULL) AS output_tokens,
        anyIf(cost_usd, cost_usd IS NOT NULL) AS cost_usd,
        argMaxIf(input, phase != 'start', input IS NOT NULL) AS input,
        argMaxIf(output, time, output IS NOT NULL) AS output,
        anyIf(command, command IS NOT NULL) AS command,
        min(success) AS success,
        argMaxIf(exit_code, exit_code != 0, exit_code IS NOT NULL) AS exit_code,
        max(duration_ms) AS duration_ms,
        max(status_code) AS status_code,
        anyIf(status_message, status_message IS NOT NULL) AS status_message
    FROM agent_events
    GROUP BY run_id, _call
),
log_matches AS (
    SELECT
        g.run_id AS run_id,
        g._call AS _call,
        s.span_id AS step_span_id,
        row_number() OVER (
            PARTITION BY g.run_id, g._call
            ORDER BY coalesce(g.tool_call_id = s.tool_call_id, false) DESC,
                     has(g.log_span_ids, s.span_id) DESC,
                     CASE WHEN g.kind = 'tool' THEN abs(
                         intDiv(toUnixTimestamp64Nano(coalesce(g.end_time, g.start_time)) + 500, 1000)
                         - intDiv(toUnixTimestamp64Nano(coalesce(s.end_time, s.start_time)) + 500, 1000)) END,
                     s.start_time DESC, s.span_id
        ) AS _rank
    FROM logged AS g
    INNER JOIN span_steps AS s ON s.run_id = g.run_id AND s.kind = g.kind
    WHERE (g.kind = 'tool' AND (
              coalesce(g.tool_call_id = s.tool_call_id, false)
              OR ((g.tool_call_id IS NULL OR s.tool_call_id IS NULL)
                  AND g.tool_name = s.tool_name
                  AND (has(g.log_span_ids, s.span_id)
                       OR has(g.log_span_ids, s.parent_span_id)
                       OR (g.start_time <= coalesce(s.end_time, g.start_time) + INTERVAL 5 MILLISECOND
                           AND coalesce(g.end_time, g.start_time) >= s.start_time - INTERVAL 5 MILLISECOND)))))
       OR (g.kind = 'llm' AND has(g.log_span_ids, s.span_id))
       OR (g.kind = 'llm'
           AND coalesce(g.end_time, g.start_time) >= s.start_time - INTERVAL 5 MILLISECOND
           AND coalesce(g.end_time, g.start_time) <= coalesce(s.end_time, g.end_time, g.start_time) + INTERVAL 5 MILLISECOND
           AND (g.model IS NULL OR s.model IS NULL OR g.model = s.model)
           AND (g.input_tokens IS NULL OR s.input_tokens IS NULL OR g.input_tokens = s.input_tokens)
           AND (g.output_tokens IS NULL OR s.output_tokens IS NULL OR g.output_tokens = s.output_tokens))
),
log_added AS (
    SELECT
        m.run_id AS run_id,
        m.step_span_id AS span_id,
        anyIf(g.model, g.model IS NOT NULL) AS model,
        anyIf(g.tool_name, g.tool_name IS NOT NULL) AS tool_name,
        anyIf(g.tool_call_id, g.tool_call_id IS NOT NULL) AS tool_call_id,
        argMaxIf(g.finish_reason_raw, g.end_time, g.finish_reason_raw IS NOT NULL) AS finish_reason_raw,
        anyIf(g.input_tokens, g.input_tokens IS NOT NULL) AS input_tokens,
        anyIf(g.output_tokens, g.output_tokens IS NOT NULL) AS output_tokens,
        anyIf(g.cost_usd, g.cost_usd IS NOT NULL) AS cost_usd,
        anyIf(g.input, g.input IS NOT NULL) AS input,
        anyIf(g.output, g.output IS NOT NULL) AS output,
        anyIf(g.command, g.command IS NOT NULL) AS command,
        min(g.success) AS success,
        argMaxIf(g.exit_code, g.exit_code != 0, g.exit_code IS NOT NULL) AS exit_code,
        max(g.status_code) AS status_code,
        anyIf(g.status_message, g.status_message IS NOT NULL) AS status_message
    FROM log_matches AS m
    INNER JOIN logged AS g ON g.run_id = m.run_id AND g._call = m._call
    WHERE m._rank = 1
    GROUP BY m.run_id, m.step_span_id
),
all_steps AS (
    SELECT
        s.run_id AS run_id,
        s.kind AS kind,
        s.name AS name,
        s.span_id AS span_id,
        s.parent_span_id AS parent_span_id,
        s.start_time AS start_time,
        s.end_time AS end_time,
        CASE WHEN a.status_code = 'Error' THEN 'Error' ELSE s.status_code END AS status_code,
        coalesce(s.model, a.model) AS model,
        coalesce(s.tool_name, a.tool_name) AS tool_name,
        coalesce(s.tool_call_id, a.tool_call_id) AS tool_call_id,
        coalesce(s.finish_reason,
                 transform(lower(a.finish_reason_raw),
                           ['tool_calls', 'tool_use', 'function_call', 'end_turn', 'stop_sequence', 'max_tokens', 'max_output_tokens', 'completed', 'safety'],
                           ['tool_call', 'tool_call', 'tool_call', 'stop', 'stop', 'length', 'length', 'stop', 'content_filter'],
                           lower(a.finish_reason_raw))) AS finish_reason,
        coalesce(s.input_tokens, a.input_tokens) AS input_tokens,
        coalesce(s.output_tokens, a.output_tokens) AS output_tokens,
        coalesce(s.input, a.input) AS input,
        coalesce(s.output, a.output) AS output,
        coalesce(s.cost_usd, a.cost_usd) AS cost_usd,
        coalesce(s.finish_reason_raw, a.finish_reason_raw) AS finish_reason_raw,
        s.provider AS provider,
        CASE WHEN a.status_code = 'Error' AND (s.status_code IS NULL OR s.status_code != 'Error')
             THEN a.status_message ELSE s.status_message END AS status_message,
        s.ended AS ended,
        s.duration_ms AS duration_ms,
        s.trace_id AS trace_id,
        coalesce(s.command, a.command) AS command,
        coalesce(a.success, s.success) AS success,
        coalesce(a.exit_code, s.exit_code) AS exit_code,
        CASE WHEN a.span_id IS NULL THEN 'span' ELSE 'span+log' END AS source
    FROM span_steps AS s
    LEFT JOIN log_added AS a ON a.run_id = s.run_id AND a.span_id = s.span_id
    UNION ALL
    SELECT
        g.run_id AS run_id,
        g.kind AS kind,
        g.name AS name,
        g.event_id AS span_id,
        g.log_span_id AS parent_span_id,
        g.start_time AS start_time,
        g.end_time AS end_time,
        coalesce(g.status_code, 'Unset') AS status_code,
        g.model AS model,
        g.tool_name AS tool_name,
        g.tool_call_id AS tool_call_id,
        transform(lower(g.finish_reason_raw),
                  ['tool_calls', 'tool_use', 'function_call', 'end_turn', 'stop_sequence', 'max_tokens', 'max_output_tokens', 'completed', 'safety'],
                  ['tool_call', 'tool_call', 'tool_call', 'stop', 'stop', 'length', 'length', 'stop', 'content_filter'],
                  lower(g.finish_reason_raw)) AS finish_reason,
        g.input_tokens AS input_tokens,
        g.output_tokens AS output_tokens,
        g.input AS input,
        g.output AS output,
        g.cost_usd AS cost_usd,
        g.finish_reason_raw AS finish_reason_raw,
        CAST(NULL AS Nullable(String)) AS provider,
        g.status_message AS status_message,
        g.ended AS ended,
        coalesce(g.duration_ms, (intDiv(toUnixTimestamp64Nano(g.end_time) + 500, 1000)
                                 - intDiv(toUnixTimestamp64Nano(g.start_time) + 500, 1000)) / 1e3) AS duration_ms,
        g.trace_id AS trace_id,
        g.command AS command,
        g.success AS success,
        g.exit_code AS exit_code,
        'log' AS source
    FROM logged AS g
    WHERE (g.run_id, g._call) NOT IN (SELECT run_id, _call FROM log_matches WHERE _rank = 1)
)
SELECT
    run_id,
    toInt32(row_number() OVER (PARTITION BY run_id ORDER BY start_time, span_id)) AS step,
    kind,
    name,
    span_id,
    parent_span_id,
    start_time,
    end_time,
    status_code,
    model,
    tool_name,
    tool_call_id,
    CASE WHEN kind = 'llm' AND coalesce(finish_reason, 'stop') = 'stop'
              AND startsWith(trimLeft(coalesce(output, '')), '{')
              AND isValidJSON(output)
              AND arrayExists(x -> JSONType(x, 'type') = 'String' AND JSONExtractString(x, 'type') = 'function_call',
                              JSONExtractArrayRaw(ifNull(output, ''), 'output'))
         THEN 'tool_call' ELSE finish_reason END AS finish_reason,
    input_tokens,
    output_tokens,
    input,
    coalesce(output, CASE WHEN kind = 'tool' AND (success IS NOT NULL OR exit_code IS NOT NULL)
                          THEN concat('{"success":', multiIf(success IS NULL, 'null', success, 'true', 'false'),
                                      ',"exit_code":', ifNull(toString(exit_code), 'null'), '}') END) AS output,
    cost_usd,
    finish_reason_raw,
    provider,
    status_message,
    ended,
    duration_ms,
    trace_id,
    command,
    success,
    exit_code,
    source
FROM all_steps;
