"""Attribute keys and fixed names. agenttrace's own keys live under `agenttrace.*`;
everything else follows the OpenTelemetry semantic conventions (GenAI, process, VCS, host)."""

from __future__ import annotations

RUN_ID = "agenttrace.run.id"
"""The run a span belongs to. A resource attribute for child processes, a span attribute in-process."""

SPAN_TYPE = "agenttrace.span.type"
"""What an agenttrace-made span is: `run`, `step`, `process`, `verify`, `claim`."""

RUN_NAME = "agenttrace.run.name"
RUN_STATE = "agenttrace.run.state"
SPANS_DROPPED = "agenttrace.spans.dropped"
"""Set on the run's root span when it ends: the final state (`succeeded`, `failed`, ...)."""

OBJECTIVE = "agenttrace.objective"
"""The run's objective (JSON), on its root span: the audit never needs the file again."""

AGENT_DURATION = "agenttrace.run.agent_duration_s"
"""Seconds from the run's start to the agent's exit (the root span also covers verification)."""

STEP_KIND = "agenttrace.step.kind"
"""The kind an explicit `agenttrace.step()` declares for itself (`other` when not given)."""

ENV_NAMES = "agenttrace.env.names"
"""JSON list of environment variable names at run start. Values are never recorded."""

PACKAGES = "agenttrace.python.packages"
"""JSON object of installed distribution names to versions."""

GIT_DIRTY = "agenttrace.git.dirty"
"""Whether the working tree had uncommitted changes at run start."""

TRUNCATED_SUFFIX = "…[truncated by agenttrace]"

# OpenTelemetry semantic convention keys used by the API.
GEN_AI_OPERATION = "gen_ai.operation.name"
GEN_AI_PROVIDER = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL = "gen_ai.response.model"
GEN_AI_RESPONSE_ID = "gen_ai.response.id"
GEN_AI_FINISH_REASONS = "gen_ai.response.finish_reasons"
GEN_AI_INPUT_TOKENS = "gen_ai.usage.input_tokens"
GEN_AI_OUTPUT_TOKENS = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES = "gen_ai.output.messages"
GEN_AI_TOOL_NAME = "gen_ai.tool.name"
GEN_AI_TOOL_TYPE = "gen_ai.tool.type"
GEN_AI_TOOL_DESCRIPTION = "gen_ai.tool.description"
GEN_AI_TOOL_CALL_ID = "gen_ai.tool.call.id"
GEN_AI_TOOL_CALL_ARGUMENTS = "gen_ai.tool.call.arguments"
GEN_AI_TOOL_CALL_RESULT = "gen_ai.tool.call.result"
ERROR_TYPE = "error.type"
LLM_COST_USD = "llm.cost.total"
"""OpenInference's cost of an LLM call in USD (GenAI has no cost attribute yet)."""
