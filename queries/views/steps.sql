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
--           or another process, is that step's child, not a step of its own, also when wrapper or
--           container spans stand between them, or the step is the span its TRACEPARENT names)
--   other   agenttrace.step() spans with no declared kind
--
-- Wrapper spans (OpenInference CHAIN, GenAI invoke_workflow, OpenLLMetry workflow/task) and
-- plain HTTP or framework spans are not steps; they stay in `spans`.
--
-- Agents that name things their own way (Claude Code, Codex, Gemini CLI) are mapped by the tables
-- in agent_events.sql: `agent_span_kinds` classifies their spans first (kind `container`: never a
-- step), and their log events (`agent_events`: API requests and responses, tool decisions and
-- results) are steps too. A log event that describes a span's step adds to it (see "Log events"
-- below); one that describes no span is a step of its own.
--
-- Columns beyond DESIGN.md's: cost_usd, finish_reason_raw (as the agent said it), provider,
-- status_message, ended, duration_ms, trace_id; for tool steps `command` (the shell command, from
-- Claude's full_command / tool_input, Codex's arguments.cmd, Gemini's args.command), `success`
-- (the agent's own flag) and `exit_code` (Gemini's metadata.exitCode, Codex's "Process exited with
-- code N"); `source`: span | log | span+log (what the step was made from).
CREATE OR REPLACE MACRO agenttrace_finish_reason(raw) AS
    CASE lower(raw)
        WHEN 'tool_calls' THEN 'tool_call'
        WHEN 'tool_use' THEN 'tool_call'
        WHEN 'function_call' THEN 'tool_call'
        WHEN 'end_turn' THEN 'stop'
        WHEN 'stop_sequence' THEN 'stop'
        WHEN 'max_tokens' THEN 'length'
        WHEN 'max_output_tokens' THEN 'length'
        WHEN 'completed' THEN 'stop'
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
WITH RECURSIVE classified AS (
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
        SELECT
            sp.*,
            (SELECT m.kind FROM agent_span_kinds m
             WHERE (m.service_like IS NULL OR sp.service_name LIKE m.service_like)
               AND (m.span_name IS NULL OR sp.name = m.span_name)
               AND (m.when_key IS NULL OR sp.attributes[m.when_key] = coalesce(m.when_value, sp.attributes[m.when_key]))
             ORDER BY m.priority LIMIT 1) AS _mapped
        FROM spans sp
    ) s
),
-- Above each process span, nearest first, the spans that are no step kind (containers, wrappers,
-- the run), up to the first that is one. A process starts from the span its TRACEPARENT named (the
-- watcher's `agenttrace.process.traceparent.*`: Claude Code's Bash tool hands its span on) when
-- that span is in the run, else from its parent: the agent's word decides only where it is counted.
process_lineage AS (
    SELECT c.run_id, c.span_id AS process_id, coalesce(d.trace_id, c.trace_id) AS above_trace_id,
           coalesce(d.span_id, c.parent_span_id) AS above_id, 1 AS depth
    FROM classified c
    LEFT JOIN classified d
      ON d.run_id = c.run_id AND d.span_id <> c.span_id
     AND d.trace_id = c.attributes['agenttrace.process.traceparent.trace_id']
     AND d.span_id = c.attributes['agenttrace.process.traceparent.span_id']
    WHERE c._kind = 'process'
    UNION ALL
    SELECT l.run_id, l.process_id, x.trace_id, x.parent_span_id, l.depth + 1
    FROM process_lineage l
    JOIN classified x ON x.run_id = l.run_id AND x.trace_id = l.above_trace_id AND x.span_id = l.above_id
    WHERE x._kind IS NULL AND x.parent_span_id IS NOT NULL AND l.depth < 64
),
-- An agent span with LLM or tool spans below it is the agent's turn or run, a container (the
-- top-level agent span, an Agents SDK agent between hand-offs, a LangGraph node's agent): a person
-- counts the calls inside it. One with none below it is a sub-agent invocation whose work is not
-- in the run (a remote agent), one step.
work_lineage AS (
    SELECT run_id, trace_id, parent_span_id AS above_id, 1 AS depth
    FROM classified
    WHERE _kind IN ('llm', 'tool') AND parent_span_id IS NOT NULL
    UNION
    SELECT l.run_id, l.trace_id, x.parent_span_id, l.depth + 1
    FROM work_lineage l
    JOIN classified x ON x.run_id = l.run_id AND x.trace_id = l.trace_id AND x.span_id = l.above_id
    WHERE x.parent_span_id IS NOT NULL AND l.depth < 64
),
agent_containers AS (
    SELECT DISTINCT c.run_id, c.span_id
    FROM classified c
    JOIN work_lineage l ON l.run_id = c.run_id AND l.trace_id = c.trace_id AND l.above_id = c.span_id
    WHERE c._kind = 'agent'
),
-- The agent's own root process (the one `agenttrace run` started: under the run's span, its
-- parent the supervisor) is a container, never a step (DESIGN.md: a person counting the agent's
-- actions does not count the agent). The commands it runs directly are steps when the agent
-- reports no steps of its own (no LLM or tool spans, no log events): a shell agent. An agent that
-- reports its own steps (a CLI agent's `node` starting `codex`, `claude.exe` starting `env`) runs
-- its own machinery there, not steps; its commands come as its tool steps.
root_processes AS (
    SELECT c.run_id, c.span_id
    FROM classified c
    JOIN classified p ON p.run_id = c.run_id AND p.trace_id = c.trace_id AND p.span_id = c.parent_span_id
    WHERE c._kind = 'process'
      AND p.attributes['agenttrace.span.type'] = 'run'
      AND c.attributes['process.parent_pid']
          = coalesce(p.attributes['agenttrace.supervisor.pid'], p.attributes['process.pid'])
),
-- A shell agent: its root process is a shell (what the supervisor saw it exec; no OTLP the agent
-- sends can make a shell script's failed commands stop being its steps), or an agent that
-- reports no steps of its own.
shell_agents AS (
    SELECT DISTINCT r.run_id FROM root_processes r
    JOIN classified c ON c.run_id = r.run_id AND c.span_id = r.span_id
    WHERE regexp_replace(coalesce(c.attributes['process.executable.name'], ''), '^.*/', '')
              IN ('sh', 'bash', 'dash', 'zsh', 'ksh', 'mksh', 'fish', 'ash', 'busybox')
       OR (NOT EXISTS (SELECT 1 FROM classified o WHERE o.run_id = r.run_id AND o._kind IN ('llm', 'tool'))
           AND NOT EXISTS (SELECT 1 FROM agent_events e WHERE e.run_id = r.run_id))
),
candidates AS (
    SELECT c.*
    FROM classified c
    WHERE c._kind IS NOT NULL
      -- a process under a step of another kind than `agent` (the nearest step-kind span above it,
      -- through containers and wrappers) is part of that step; under a shell agent's root
      -- process, it is a step
      AND NOT (c._kind = 'process' AND EXISTS (
          SELECT 1 FROM process_lineage l
          JOIN classified a ON a.run_id = l.run_id AND a.trace_id = l.above_trace_id AND a.span_id = l.above_id
          WHERE l.run_id = c.run_id AND l.process_id = c.span_id AND a._kind IS NOT NULL AND a._kind <> 'agent'
            AND NOT (a.span_id IN (SELECT span_id FROM root_processes r WHERE r.run_id = c.run_id)
                     AND c.run_id IN (SELECT run_id FROM shell_agents))))
      AND NOT EXISTS (SELECT 1 FROM root_processes r WHERE r.run_id = c.run_id AND r.span_id = c.span_id)
      AND NOT EXISTS (SELECT 1 FROM agent_containers a WHERE a.run_id = c.run_id AND a.span_id = c.span_id)
      -- a process the watcher saw that the Python bootstrap recorded exactly is one step, the
      -- exact record: the one `processes` keeps (processes.sql pairs the two)
      AND NOT coalesce(c._kind = 'process' AND c.attributes['agenttrace.process.source'] = 'watcher'
          AND NOT EXISTS (SELECT 1 FROM processes p WHERE p.run_id = c.run_id AND p.span_id = c.span_id),
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
        ) AS _finish_raw
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
        attributes['tool_name'], nullif(regexp_extract(name, '^execute_tool (.+)$', 1), ''))
    END AS tool_name,
    coalesce(attributes['gen_ai.tool.call.id'], attributes['tool.id'], attributes['tool_call.id'],
             attributes['gen_ai.tool.call_id'],
             CASE WHEN _kind = 'tool' THEN coalesce(attributes['tool_use_id'], attributes['call_id']) END) AS tool_call_id,
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
            attributes['traceloop.entity.input'], attributes['tool.parameters'], attributes['gen_ai.input.messages'])
        WHEN 'process' THEN coalesce(attributes['process.command_line'], attributes['process.command_args'])
        ELSE coalesce(attributes['input.value'], attributes['traceloop.entity.input'])
    END AS input,
    CASE _kind
        WHEN 'llm' THEN coalesce(
            attributes['gen_ai.output.messages'], attributes['output.value'], attributes['gen_ai.completion'],
            agenttrace_prefixed_json(attributes, 'llm.output_messages.'),
            agenttrace_prefixed_json(attributes, 'gen_ai.completion.'))
        WHEN 'tool' THEN coalesce(
            attributes['gen_ai.tool.call.result'], attributes['output.value'], attributes['traceloop.entity.output'],
            attributes['gen_ai.output.messages'])
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
    trace_id,
    CASE WHEN _kind = 'tool' THEN coalesce(
        attributes['full_command'],
        json_extract_string(TRY_CAST(attributes['gen_ai.tool.call.arguments'] AS JSON), '$.command'),
        json_extract_string(TRY_CAST(attributes['gen_ai.input.messages'] AS JSON), '$.args.command'))
    END AS command,
    CASE WHEN _kind = 'tool' THEN TRY_CAST(lower(attributes['success']) AS BOOLEAN) END AS success,
    CASE WHEN _kind = 'tool' THEN TRY_CAST(attributes['exit_code'] AS INTEGER) END AS exit_code
FROM normalised
),
-- One LLM call, one step. The LLM spans that describe one request (a framework's span with the SDK
-- instrumentor's span of the request under it; two instrumentors of one SDK) count once, here and
-- so in every token total. An LLM span describes (part of) the request of another when
--   (a) it is below it, with only spans that are not steps between them (wrappers, HTTP and
--       framework spans, other LLM spans), or
--   (b) neither is below the other (a callback-based instrumentor, such as OpenInference's
--       LangChain one, does not make its span current), but they are in the same trace, it lies
--       within the other in time (give or take a millisecond) and starts before the other ends (a
--       call made after the other ended is another call, however fast), and both report the same
--       input and output token counts and the same model (where both name one).
-- An LLM span with nothing of that kind in it is a request. An LLM span over exactly one request
-- describes that request; one over several (a framework's call that retried) is not a step: the
-- requests are. Of the spans of one request, the richest is the step: the one with most of model,
-- input tokens, output tokens and finish reason; on a tie, the innermost (the SDK's span, with the
-- provider's own finish reason and usage; in (b), the one that starts later, else ends earlier,
-- else has the greater span id). What the step's span lacks (model, tokens, finish
-- reason, cost, provider, input, output) is taken from the other spans of its request, and if any
-- of them ended in an error, so did the step (a framework that refused an incomplete response).
llm_lineage AS (
    SELECT run_id, trace_id, span_id AS inner_id, parent_span_id AS outer_id, 1 AS depth, false AS crossed
    FROM classified
    WHERE _kind = 'llm' AND parent_span_id IS NOT NULL
    UNION ALL
    SELECT l.run_id, l.trace_id, l.inner_id, c.parent_span_id, l.depth + 1,
           l.crossed OR coalesce(c._kind <> 'llm', false)
    FROM llm_lineage l
    JOIN classified c ON c.run_id = l.run_id AND c.trace_id = l.trace_id AND c.span_id = l.outer_id
    WHERE c.parent_span_id IS NOT NULL AND l.depth < 64
),
llm_calls AS (
    SELECT
        *,
        CAST(model IS NOT NULL AS INTEGER) + CAST(input_tokens IS NOT NULL AS INTEGER)
            + CAST(output_tokens IS NOT NULL AS INTEGER) + CAST(finish_reason_raw IS NOT NULL AS INTEGER) AS _richness
    FROM projected
    WHERE kind = 'llm'
),
llm_nesting AS (
    SELECT l.run_id, l.outer_id, l.inner_id, l.depth AS dist
    FROM llm_lineage l
    JOIN llm_calls o ON o.run_id = l.run_id AND o.trace_id = l.trace_id AND o.span_id = l.outer_id
    WHERE NOT l.crossed
    UNION ALL
    SELECT o.run_id, o.span_id, i.span_id, 1
    FROM llm_calls o
    JOIN llm_calls i
      ON i.run_id = o.run_id AND i.trace_id = o.trace_id AND i.span_id <> o.span_id
     AND i.start_time >= o.start_time - INTERVAL 1 MILLISECOND AND i.end_time <= o.end_time + INTERVAL 1 MILLISECOND
     AND i.start_time < o.end_time
     AND i.input_tokens = o.input_tokens AND i.output_tokens = o.output_tokens
     AND (i.model = o.model OR i.model IS NULL OR o.model IS NULL)
     AND (i.start_time > o.start_time OR (i.start_time = o.start_time AND (i.end_time < o.end_time
          OR (i.end_time = o.end_time AND i.span_id > o.span_id))))
    WHERE NOT EXISTS (SELECT 1 FROM llm_lineage l
                      WHERE l.run_id = o.run_id AND l.inner_id = i.span_id AND l.outer_id = o.span_id)
      AND NOT EXISTS (SELECT 1 FROM llm_lineage l
                      WHERE l.run_id = o.run_id AND l.inner_id = o.span_id AND l.outer_id = i.span_id)
),
llm_reach AS (
    SELECT run_id, outer_id, inner_id, dist FROM llm_nesting
    UNION ALL
    SELECT r.run_id, r.outer_id, n.inner_id, r.dist + n.dist
    FROM llm_reach r
    JOIN llm_nesting n ON n.run_id = r.run_id AND n.outer_id = r.inner_id
    WHERE r.dist < 64
),
llm_requests AS (
    SELECT c.run_id, c.span_id
    FROM llm_calls c
    WHERE NOT EXISTS (SELECT 1 FROM llm_reach r WHERE r.run_id = c.run_id AND r.outer_id = c.span_id)
),
llm_over AS (
    SELECT r.run_id, r.outer_id AS span_id, count(DISTINCT r.inner_id) AS requests,
           min(r.inner_id) AS request_id, min(r.dist) AS dist
    FROM llm_reach r
    JOIN llm_requests q ON q.run_id = r.run_id AND q.span_id = r.inner_id
    GROUP BY r.run_id, r.outer_id
),
llm_members AS (
    SELECT
        c.*,
        CASE WHEN o.span_id IS NULL THEN c.span_id WHEN o.requests = 1 THEN o.request_id END AS _request_id,
        coalesce(o.dist, 0) AS _dist
    FROM llm_calls c
    LEFT JOIN llm_over o ON o.run_id = c.run_id AND o.span_id = c.span_id
),
llm_ranked AS (
    SELECT
        *,
        _request_id IS NOT NULL AND row_number() OVER (
            PARTITION BY run_id, _request_id ORDER BY _richness DESC, _dist, span_id
        ) = 1 AS _kept
    FROM llm_members
),
same_call_dropped AS (
    SELECT run_id, span_id FROM llm_ranked WHERE NOT _kept
),
same_call_merged AS (
    SELECT
        k.run_id,
        k.span_id,
        any_value(d.model) FILTER (WHERE d.model IS NOT NULL) AS model,
        any_value(d.finish_reason) FILTER (WHERE d.finish_reason IS NOT NULL) AS finish_reason,
        any_value(d.finish_reason_raw) FILTER (WHERE d.finish_reason_raw IS NOT NULL) AS finish_reason_raw,
        any_value(d.input_tokens) FILTER (WHERE d.input_tokens IS NOT NULL) AS input_tokens,
        any_value(d.output_tokens) FILTER (WHERE d.output_tokens IS NOT NULL) AS output_tokens,
        any_value(d.cost_usd) FILTER (WHERE d.cost_usd IS NOT NULL) AS cost_usd,
        any_value(d.provider) FILTER (WHERE d.provider IS NOT NULL) AS provider,
        any_value(d.input) FILTER (WHERE d.input IS NOT NULL) AS input,
        any_value(d.output) FILTER (WHERE d.output IS NOT NULL) AS output,
        any_value(coalesce(d.status_message, '')) FILTER (WHERE d.status_code = 'Error') AS error_message
    FROM llm_ranked k
    JOIN llm_ranked d ON d.run_id = k.run_id AND d._request_id = k._request_id AND NOT d._kept
    WHERE k._kept
    GROUP BY k.run_id, k.span_id
),
span_steps AS (
SELECT
    p.run_id,
    p.* EXCLUDE (run_id) REPLACE (
        coalesce(p.model, m.model) AS model,
        coalesce(p.finish_reason, m.finish_reason) AS finish_reason,
        coalesce(p.input_tokens, m.input_tokens) AS input_tokens,
        coalesce(p.output_tokens, m.output_tokens) AS output_tokens,
        coalesce(p.input, m.input) AS input,
        coalesce(p.output, m.output) AS output,
        coalesce(p.cost_usd, m.cost_usd) AS cost_usd,
        coalesce(p.finish_reason_raw, m.finish_reason_raw) AS finish_reason_raw,
        coalesce(p.provider, m.provider) AS provider,
        CASE WHEN m.error_message IS NOT NULL THEN 'Error' ELSE p.status_code END AS status_code,
        CASE WHEN m.error_message IS NOT NULL AND p.status_code IS DISTINCT FROM 'Error'
             THEN nullif(m.error_message, '') ELSE p.status_message END AS status_message
    )
FROM projected p
LEFT JOIN same_call_merged m ON m.run_id = p.run_id AND m.span_id = p.span_id
WHERE NOT EXISTS (SELECT 1 FROM same_call_dropped d WHERE d.run_id = p.run_id AND d.span_id = p.span_id)
),
-- Log events (agent_events). The records of one tool call (a decision, then a result) are one
-- call: they share a tool call id (a record without one is a call of its own); each LLM event is
-- one call. A logged call describes a span's step, and adds to it, when
--   tool: they have the same tool call id; or, where either has none, the same tool name, and
--         the record names the step's span or its parent, or their times overlap (± 5 ms);
--   llm:  the record names the step's span; or its time lies within the step's span (± 5 ms),
--         and where both give them, the model and the input and output tokens are the same.
-- Of the steps a call could describe, the one with the same id, else the one its record names,
-- else (tool) the one that ended closest to it, else the latest to start, takes it. The step
-- keeps what its span says and takes what it lacks from the call (model, tokens, cost, finish
-- reason, input, output, command, success, exit code);
-- a call that failed (success false, an exit code other than 0, a rejected decision, an API
-- error) makes the step an error, with the reason as its status message. A logged call that
-- describes no span is a step of its own: its span_id is the call's event id (16 hex digits, no
-- span has it), its parent the span its first record names, `ended` whether a record says it
-- returned.
logged AS (
    SELECT
        run_id,
        coalesce(CASE WHEN kind = 'tool' THEN tool_call_id END, event_id) AS _call,
        any_value(kind) AS kind,
        arg_max(event, time) AS name,
        min(event_id) AS event_id,
        min(start_time) AS start_time,
        max(end_time) AS end_time,
        bool_or(phase <> 'start') AS ended,
        arg_min(trace_id, time) AS trace_id,
        arg_min(span_id, time) AS log_span_id,
        list(DISTINCT span_id) FILTER (WHERE span_id IS NOT NULL) AS log_span_ids,
        any_value(model) FILTER (WHERE model IS NOT NULL AND kind = 'llm') AS model,
        any_value(tool_name) FILTER (WHERE tool_name IS NOT NULL) AS tool_name,
        any_value(tool_call_id) FILTER (WHERE tool_call_id IS NOT NULL) AS tool_call_id,
        arg_max(finish_reason_raw, time) FILTER (WHERE finish_reason_raw IS NOT NULL) AS finish_reason_raw,
        any_value(input_tokens) FILTER (WHERE input_tokens IS NOT NULL) AS input_tokens,
        any_value(output_tokens) FILTER (WHERE output_tokens IS NOT NULL) AS output_tokens,
        any_value(cost_usd) FILTER (WHERE cost_usd IS NOT NULL) AS cost_usd,
        arg_max(input, phase <> 'start') FILTER (WHERE input IS NOT NULL) AS input,
        arg_max(output, time) FILTER (WHERE output IS NOT NULL) AS output,
        any_value(command) FILTER (WHERE command IS NOT NULL) AS command,
        bool_and(success) AS success,
        arg_max(exit_code, exit_code <> 0) FILTER (WHERE exit_code IS NOT NULL) AS exit_code,
        max(duration_ms) AS duration_ms,
        max(status_code) AS status_code,
        any_value(status_message) FILTER (WHERE status_message IS NOT NULL) AS status_message
    FROM agent_events
    GROUP BY ALL
),
log_matches AS (
    SELECT
        g.run_id,
        g._call,
        s.span_id AS step_span_id,
        row_number() OVER (
            PARTITION BY g.run_id, g._call
            ORDER BY coalesce(g.tool_call_id = s.tool_call_id, false) DESC,
                     coalesce(list_contains(g.log_span_ids, s.span_id), false) DESC,
                     CASE WHEN g.kind = 'tool' THEN abs(
                         epoch_us(CAST(coalesce(g.end_time, g.start_time) AS TIMESTAMPTZ))
                         - epoch_us(CAST(coalesce(s.end_time, s.start_time) AS TIMESTAMPTZ))) END,
                     s.start_time DESC, s.span_id
        ) AS _rank
    FROM logged g
    JOIN span_steps s ON s.run_id = g.run_id AND s.kind = g.kind
    WHERE (g.kind = 'tool' AND (
              coalesce(g.tool_call_id = s.tool_call_id, false)
              OR ((g.tool_call_id IS NULL OR s.tool_call_id IS NULL)
                  AND g.tool_name = s.tool_name
                  AND (coalesce(list_contains(g.log_span_ids, s.span_id), false)
                       OR coalesce(list_contains(g.log_span_ids, s.parent_span_id), false)
                       OR (g.start_time <= coalesce(s.end_time, g.start_time) + INTERVAL 5 MILLISECOND
                           AND coalesce(g.end_time, g.start_time) >= s.start_time - INTERVAL 5 MILLISECOND)))))
       OR (g.kind = 'llm' AND coalesce(list_contains(g.log_span_ids, s.span_id), false))
       OR (g.kind = 'llm'
           AND coalesce(g.end_time, g.start_time) >= s.start_time - INTERVAL 5 MILLISECOND
           AND coalesce(g.end_time, g.start_time) <= coalesce(s.end_time, g.end_time, g.start_time) + INTERVAL 5 MILLISECOND
           AND (g.model IS NULL OR s.model IS NULL OR g.model = s.model)
           AND (g.input_tokens IS NULL OR s.input_tokens IS NULL OR g.input_tokens = s.input_tokens)
           AND (g.output_tokens IS NULL OR s.output_tokens IS NULL OR g.output_tokens = s.output_tokens))
),
log_added AS (
    SELECT
        m.run_id,
        m.step_span_id AS span_id,
        any_value(g.model) FILTER (WHERE g.model IS NOT NULL) AS model,
        any_value(g.tool_name) FILTER (WHERE g.tool_name IS NOT NULL) AS tool_name,
        any_value(g.tool_call_id) FILTER (WHERE g.tool_call_id IS NOT NULL) AS tool_call_id,
        arg_max(g.finish_reason_raw, g.end_time) FILTER (WHERE g.finish_reason_raw IS NOT NULL) AS finish_reason_raw,
        any_value(g.input_tokens) FILTER (WHERE g.input_tokens IS NOT NULL) AS input_tokens,
        any_value(g.output_tokens) FILTER (WHERE g.output_tokens IS NOT NULL) AS output_tokens,
        any_value(g.cost_usd) FILTER (WHERE g.cost_usd IS NOT NULL) AS cost_usd,
        any_value(g.input) FILTER (WHERE g.input IS NOT NULL) AS input,
        any_value(g.output) FILTER (WHERE g.output IS NOT NULL) AS output,
        any_value(g.command) FILTER (WHERE g.command IS NOT NULL) AS command,
        bool_and(g.success) AS success,
        arg_max(g.exit_code, g.exit_code <> 0) FILTER (WHERE g.exit_code IS NOT NULL) AS exit_code,
        max(g.status_code) AS status_code,
        any_value(g.status_message) FILTER (WHERE g.status_message IS NOT NULL) AS status_message
    FROM log_matches m
    JOIN logged g ON g.run_id = m.run_id AND g._call = m._call
    WHERE m._rank = 1
    GROUP BY m.run_id, m.step_span_id
),
all_steps AS (
    SELECT
        s.* REPLACE (
            coalesce(s.model, a.model) AS model,
            coalesce(s.tool_name, a.tool_name) AS tool_name,
            coalesce(s.tool_call_id, a.tool_call_id) AS tool_call_id,
            coalesce(s.finish_reason, agenttrace_finish_reason(a.finish_reason_raw)) AS finish_reason,
            coalesce(s.finish_reason_raw, a.finish_reason_raw) AS finish_reason_raw,
            coalesce(s.input_tokens, a.input_tokens) AS input_tokens,
            coalesce(s.output_tokens, a.output_tokens) AS output_tokens,
            coalesce(s.cost_usd, a.cost_usd) AS cost_usd,
            coalesce(s.input, a.input) AS input,
            coalesce(s.output, a.output) AS output,
            coalesce(s.command, a.command) AS command,
            coalesce(a.success, s.success) AS success,
            coalesce(a.exit_code, s.exit_code) AS exit_code,
            CASE WHEN a.status_code = 'Error' THEN 'Error' ELSE s.status_code END AS status_code,
            CASE WHEN a.status_code = 'Error' AND s.status_code IS DISTINCT FROM 'Error'
                 THEN a.status_message ELSE s.status_message END AS status_message
        ),
        CASE WHEN a.span_id IS NULL THEN 'span' ELSE 'span+log' END AS source
    FROM span_steps s
    LEFT JOIN log_added a ON a.run_id = s.run_id AND a.span_id = s.span_id
    UNION ALL BY NAME
    SELECT
        g.run_id,
        g.kind,
        g.name,
        g.event_id AS span_id,
        g.log_span_id AS parent_span_id,
        g.start_time,
        g.end_time,
        coalesce(g.status_code, 'Unset') AS status_code,
        g.model,
        g.tool_name,
        g.tool_call_id,
        agenttrace_finish_reason(g.finish_reason_raw) AS finish_reason,
        g.input_tokens,
        g.output_tokens,
        g.input,
        g.output,
        g.cost_usd,
        g.finish_reason_raw,
        CAST(NULL AS VARCHAR) AS provider,
        g.status_message,
        g.ended,
        coalesce(g.duration_ms, (epoch_us(CAST(g.end_time AS TIMESTAMPTZ)) - epoch_us(CAST(g.start_time AS TIMESTAMPTZ))) / 1e3) AS duration_ms,
        g.trace_id,
        g.command,
        g.success,
        g.exit_code,
        'log' AS source
    FROM logged g
    WHERE NOT EXISTS (SELECT 1 FROM log_matches m WHERE m.run_id = g.run_id AND m._call = g._call AND m._rank = 1)
)
-- A tool step whose agent reports no result text (Claude Code's telemetry has none) has as its
-- output what the agent does report: {"success": ..., "exit_code": ...}. A Responses API answer
-- that asks for tools (`function_call` output items) has finish reason `tool_call`, whatever the
-- instrumentor made of its status `completed` (the API has no finish reason).
SELECT
    run_id,
    CAST(row_number() OVER (PARTITION BY run_id ORDER BY start_time, span_id) AS INTEGER) AS step,
    * EXCLUDE (run_id) REPLACE (
        CASE WHEN kind = 'llm' AND coalesce(finish_reason, 'stop') = 'stop'
                  AND starts_with(ltrim(coalesce(output, '')), '{')
                  AND list_contains(json_extract_string(TRY_CAST(output AS JSON), '$.output[*].type'), 'function_call')
             THEN 'tool_call' ELSE finish_reason END AS finish_reason,
        coalesce(output, CASE WHEN kind = 'tool' AND (success IS NOT NULL OR exit_code IS NOT NULL)
                              THEN CAST(json_object('success', success, 'exit_code', exit_code) AS VARCHAR) END) AS output
    )
FROM all_steps;
