-- Steps: the units of agent work, normalised across the conventions agents emit, numbered from 1
-- in start order (ties by span id).
--
--   kind    from
--   llm     gen_ai.operation.name chat | text_completion | generate_content | embeddings (new and
--           old GenAI names); openinference.span.kind LLM | EMBEDDING; OpenLLMetry llm.request.type
--   tool    gen_ai.operation.name execute_tool; openinference TOOL | RETRIEVER; traceloop.span.kind tool
--   agent   gen_ai.operation.name invoke_agent | create_agent | plan; openinference AGENT;
--           traceloop.span.kind agent
--   verify  agenttrace verification spans
--   process agenttrace process spans spawned directly by the agent or an agent span (a process
--           spawned inside any other step, be it a tool call, an LLM call, an agenttrace.step()
--           or another process, is that step's child, not a step of its own)
--   other   agenttrace.step() spans with no declared kind
--
-- Wrapper spans (OpenInference CHAIN, GenAI invoke_workflow, OpenLLMetry workflow/task) and
-- plain HTTP or framework spans are not steps; they stay in `spans`.
CREATE OR REPLACE MACRO agenttrace_finish_reason(raw) AS
    CASE lower(raw)
        WHEN 'tool_calls' THEN 'tool_call'
        WHEN 'tool_use' THEN 'tool_call'
        WHEN 'function_call' THEN 'tool_call'
        WHEN 'end_turn' THEN 'stop'
        WHEN 'stop_sequence' THEN 'stop'
        WHEN 'max_tokens' THEN 'length'
        WHEN 'safety' THEN 'content_filter'
        ELSE lower(raw)
    END;

-- The attributes whose keys start with `prefix`, as one JSON object (NULL when there are none):
-- OpenInference flattens messages into `llm.input_messages.0.message.content` and so on.
CREATE OR REPLACE MACRO agenttrace_prefixed_json(attrs, prefix) AS
    CASE WHEN len(list_filter(map_entries(attrs), lambda e: starts_with(e.key, prefix))) > 0
         THEN CAST(to_json(map_from_entries(list_filter(map_entries(attrs), lambda e: starts_with(e.key, prefix)))) AS VARCHAR)
    END;

CREATE OR REPLACE VIEW steps AS
WITH classified AS (
    SELECT
        s.*,
        attributes['gen_ai.operation.name'] AS _op,
        attributes['openinference.span.kind'] AS _oi,
        attributes['traceloop.span.kind'] AS _tl,
        CASE
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
    FROM spans s
),
candidates AS (
    SELECT c.*
    FROM classified c
    LEFT JOIN classified p
      ON p.run_id = c.run_id AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    WHERE c._kind IS NOT NULL
      AND NOT (c._kind = 'process' AND p._kind IS NOT NULL AND p._kind <> 'agent')
),
normalised AS (
    SELECT
        *,
        coalesce(
            attributes['gen_ai.response.finish_reasons'],
            attributes['llm.finish_reason'],
            attributes['llm.response.finish_reason'],
            attributes['gen_ai.completion.0.finish_reason']
        ) AS _finish_raw
    FROM candidates
)
SELECT
    run_id,
    CAST(row_number() OVER (PARTITION BY run_id ORDER BY start_time, span_id) AS INTEGER) AS step,
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
        nullif(regexp_extract(name, '^execute_tool (.+)$', 1), ''))
    END AS tool_name,
    coalesce(attributes['gen_ai.tool.call.id'], attributes['tool.id'], attributes['tool_call.id']) AS tool_call_id,
    agenttrace_finish_reason(
        CASE WHEN starts_with(ltrim(_finish_raw), '[') THEN json_extract_string(_finish_raw, '$[0]') ELSE _finish_raw END
    ) AS finish_reason,
    TRY_CAST(coalesce(
        attributes['gen_ai.usage.input_tokens'], attributes['gen_ai.usage.prompt_tokens'],
        attributes['llm.token_count.prompt'], attributes['llm.usage.prompt_tokens']) AS BIGINT) AS input_tokens,
    TRY_CAST(coalesce(
        attributes['gen_ai.usage.output_tokens'], attributes['gen_ai.usage.completion_tokens'],
        attributes['llm.token_count.completion'], attributes['llm.usage.completion_tokens']) AS BIGINT) AS output_tokens,
    CASE _kind
        WHEN 'llm' THEN coalesce(
            attributes['gen_ai.input.messages'], attributes['input.value'], attributes['gen_ai.prompt'],
            agenttrace_prefixed_json(attributes, 'llm.input_messages.'),
            agenttrace_prefixed_json(attributes, 'gen_ai.prompt.'))
        WHEN 'tool' THEN coalesce(
            attributes['gen_ai.tool.call.arguments'], attributes['input.value'],
            attributes['traceloop.entity.input'], attributes['tool.parameters'])
        WHEN 'process' THEN coalesce(attributes['process.command_line'], attributes['process.command_args'])
        ELSE coalesce(attributes['input.value'], attributes['traceloop.entity.input'])
    END AS input,
    CASE _kind
        WHEN 'llm' THEN coalesce(
            attributes['gen_ai.output.messages'], attributes['output.value'], attributes['gen_ai.completion'],
            agenttrace_prefixed_json(attributes, 'llm.output_messages.'),
            agenttrace_prefixed_json(attributes, 'gen_ai.completion.'))
        WHEN 'tool' THEN coalesce(
            attributes['gen_ai.tool.call.result'], attributes['output.value'], attributes['traceloop.entity.output'])
        WHEN 'process' THEN attributes['process.exit.code']
        ELSE coalesce(attributes['output.value'], attributes['traceloop.entity.output'])
    END AS output,
    CASE WHEN _kind = 'llm' THEN TRY_CAST(coalesce(
        attributes['llm.cost.total'], attributes['gen_ai.usage.cost']) AS DOUBLE)
    END AS cost_usd,
    CASE WHEN _finish_raw IS NOT NULL THEN
        CASE WHEN starts_with(ltrim(_finish_raw), '[') THEN json_extract_string(_finish_raw, '$[0]') ELSE _finish_raw END
    END AS finish_reason_raw,
    coalesce(attributes['gen_ai.provider.name'], attributes['gen_ai.system'], attributes['llm.provider'],
             attributes['llm.system']) AS provider,
    status_message,
    ended,
    duration_ms,
    trace_id
FROM normalised;
