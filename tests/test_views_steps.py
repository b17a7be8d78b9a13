"""The `steps` view: runs written in each convention agents emit (OTel GenAI latest and old names,
OpenInference, OpenLLMetry/Traceloop, agenttrace's own API) come out as the same numbered steps with
the right kind, order, tool name, tool call id, finish reason and tokens.

Fixtures are real spans made with the OpenTelemetry SDK and stored by agenttrace's processors.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import query
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

import agenttrace

T0 = 1_780_000_000_000_000_000  # ns since the epoch; every fixture time is an offset in ms from it
RUN_ID = "agenttrace.run.id"
STEP_COLUMNS = (
    "step",
    "kind",
    "name",
    "model",
    "tool_name",
    "tool_call_id",
    "finish_reason",
    "finish_reason_raw",
    "input_tokens",
    "output_tokens",
)

MakeProvider = Callable[..., TracerProvider]


def at(ms: float) -> int:
    return T0 + int(ms * 1_000_000)


def span_id(span: Span) -> str:
    return f"{span.get_span_context().span_id:016x}"


class Recorder:
    """Writes the spans of one run through a real SDK tracer, at explicit times."""

    def __init__(self, provider: TracerProvider, run_id: str) -> None:
        self.tracer = provider.get_tracer("fixture")
        self.run_id = run_id

    def span(
        self,
        name: str,
        start_ms: float,
        end_ms: float,
        attributes: Mapping[str, Any] | None = None,
        parent: Span | None = None,
        kind: SpanKind = SpanKind.INTERNAL,
        error: str | None = None,
    ) -> Span:
        context = trace.set_span_in_context(parent) if parent is not None else otel_context.Context()
        span = self.tracer.start_span(
            name,
            context=context,
            kind=kind,
            attributes={RUN_ID: self.run_id, **(attributes or {})},
            start_time=at(start_ms),
        )
        if error is not None:
            span.set_status(Status(StatusCode.ERROR, error))
        span.end(end_time=at(end_ms))
        return span


def steps(store: Path, run_id: str, runs: list[str] | None = None) -> list[dict[str, Any]]:
    return query(store, "SELECT * FROM steps WHERE run_id = $r ORDER BY step", {"r": run_id}, runs=runs)


def columns(rows: list[dict[str, Any]], names: tuple[str, ...] = STEP_COLUMNS) -> list[tuple[Any, ...]]:
    return [tuple(row[name] for name in names) for row in rows]


class DescendingSpanIds(RandomIdGenerator):
    """Each new span id is smaller than the one before."""

    def __init__(self) -> None:
        self.last = 0xFFFF_0000_0000_0000

    def generate_span_id(self) -> int:
        self.last -= 1
        return self.last


def tie_order(*pairs: tuple[Span, str]) -> list[str]:
    """The labels of spans that start at the same time, in the view's tie-break order: span id."""
    return [label for _, label in sorted(pairs, key=lambda pair: span_id(pair[0]))]


# --------------------------------------------------------------------------------------------------
# OTel GenAI, latest names


def test_genai_latest_run_is_numbered_steps_with_tools_tokens_and_finish_reasons(
    store: Path, make_provider: MakeProvider
) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "genai-new-1")
    llm = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
    }
    output_messages = [
        {
            "role": "assistant",
            "parts": [
                {"type": "tool_call", "id": "call_1", "name": "grep", "arguments": {"pattern": "TODO"}},
                {"type": "tool_call", "id": "call_2", "name": "read_file", "arguments": {"path": "a.py"}},
            ],
        }
    ]
    workflow = rec.span(
        "invoke_workflow fix-bug", 0, 100, {"gen_ai.operation.name": "invoke_workflow"}
    )  # a wrapper, not a step
    agent = rec.span(
        "invoke_agent coder",
        1,
        99,
        {"gen_ai.operation.name": "invoke_agent", "gen_ai.agent.name": "coder"},
        parent=workflow,
    )
    ask = rec.span(
        "chat gpt-4o",
        10,
        18,
        {
            **llm,
            "gen_ai.usage.input_tokens": 812,
            "gen_ai.usage.output_tokens": 64,
            "gen_ai.response.finish_reasons": ["tool_call"],
            "gen_ai.input.messages": json.dumps(
                [{"role": "user", "parts": [{"type": "text", "content": "fix the TODO"}]}]
            ),
            "gen_ai.output.messages": json.dumps(output_messages),
        },
        parent=agent,
        kind=SpanKind.CLIENT,
    )
    tool = {"gen_ai.operation.name": "execute_tool", "gen_ai.tool.type": "function"}
    grep = rec.span(  # the two tool calls the model asked for start at the same instant
        "execute_tool grep",
        20,
        25,
        {
            **tool,
            "gen_ai.tool.name": "grep",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"pattern": "TODO"}',
            "gen_ai.tool.call.result": '["a.py:3"]',
        },
        parent=agent,
    )
    read = rec.span(
        "execute_tool read_file",
        20,
        30,
        {
            **tool,
            "gen_ai.tool.name": "read_file",
            "gen_ai.tool.call.id": "call_2",
            "gen_ai.tool.call.arguments": '{"path": "a.py"}',
            "gen_ai.tool.call.result": '"# TODO: fix"',
        },
        parent=agent,
    )
    answer = rec.span(
        "chat gpt-4o",
        40,
        60,
        {
            **llm,
            "gen_ai.usage.input_tokens": 900,
            "gen_ai.usage.output_tokens": 45,
            "gen_ai.response.finish_reasons": ["stop"],
            "gen_ai.output.messages": json.dumps(
                [{"role": "assistant", "parts": [{"type": "text", "content": "Fixed."}]}]
            ),
        },
        parent=agent,
        kind=SpanKind.CLIENT,
    )
    provider.force_flush()

    rows = steps(store, "genai-new-1")

    tool_rows = {
        "grep": ("tool", "execute_tool grep", None, "grep", "call_1", None, None, None, None),
        "read_file": ("tool", "execute_tool read_file", None, "read_file", "call_2", None, None, None, None),
    }
    tools = {"grep": grep, "read_file": read}
    first, second = tie_order(*((span, name) for name, span in tools.items()))
    assert columns(rows) == [
        # the top-level agent span holds the calls: a container, not a step (DESIGN.md)
        (1, "llm", "chat gpt-4o", "gpt-4o-2024-08-06", None, None, "tool_call", "tool_call", 812, 64),
        (2, *tool_rows[first]),
        (3, *tool_rows[second]),
        (4, "llm", "chat gpt-4o", "gpt-4o-2024-08-06", None, None, "stop", "stop", 900, 45),
    ]
    by_name = {row["tool_name"]: row for row in rows if row["kind"] == "tool"}
    assert [row["span_id"] for row in rows] == [
        span_id(ask),
        span_id(tools[first]),
        span_id(tools[second]),
        span_id(answer),
    ]
    assert {row["run_id"] for row in rows} == {"genai-new-1"}
    assert [row["provider"] for row in rows if row["kind"] == "llm"] == ["openai", "openai"]
    # The LLM step shows the tool calls the model asked for, with the ids the tool steps carry.
    requested = json.loads(rows[0]["output"])[0]["parts"]
    assert [(p["id"], p["name"]) for p in requested] == [("call_1", "grep"), ("call_2", "read_file")]
    assert (by_name["grep"]["input"], by_name["grep"]["output"]) == ('{"pattern": "TODO"}', '["a.py:3"]')
    assert (by_name["read_file"]["input"], by_name["read_file"]["output"]) == (
        '{"path": "a.py"}',
        '"# TODO: fix"',
    )
    assert all(row["parent_span_id"] == span_id(agent) for row in rows[1:])


# --------------------------------------------------------------------------------------------------
# OTel GenAI, old (deprecated) names


def test_genai_old_names_are_normalised(store: Path, make_provider: MakeProvider) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "genai-old-1")
    root = rec.span("agent loop", 0, 100)
    rec.span(
        "chat gpt-4",
        10,
        20,
        {
            "gen_ai.operation.name": "chat",
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4",
            "gen_ai.usage.prompt_tokens": 300,
            "gen_ai.usage.completion_tokens": 25,
            "gen_ai.response.finish_reasons": ["tool_calls"],
        },
        parent=root,
        kind=SpanKind.CLIENT,
    )
    rec.span(
        "execute_tool get_weather",
        30,
        40,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.system": "openai",
            "gen_ai.tool.name": "get_weather",
            "gen_ai.tool.call.id": "call_w1",
        },
        parent=root,
    )
    # An older instrumentation: no gen_ai.operation.name at all, only the system and the model.
    rec.span(
        "openai.chat",
        50,
        70,
        {
            "gen_ai.system": "openai",
            "gen_ai.request.model": "gpt-4",
            "gen_ai.usage.prompt_tokens": 340,
            "gen_ai.usage.completion_tokens": 18,
            "gen_ai.response.finish_reasons": ["stop"],
        },
        parent=root,
        kind=SpanKind.CLIENT,
    )
    provider.force_flush()

    rows = steps(store, "genai-old-1")

    assert columns(rows) == [
        (1, "llm", "chat gpt-4", "gpt-4", None, None, "tool_call", "tool_calls", 300, 25),
        (2, "tool", "execute_tool get_weather", None, "get_weather", "call_w1", None, None, None, None),
        (3, "llm", "openai.chat", "gpt-4", None, None, "stop", "stop", 340, 18),
    ]
    assert [row["provider"] for row in rows] == ["openai", "openai", "openai"]


# --------------------------------------------------------------------------------------------------
# OpenInference


def test_openinference_run_keeps_llms_and_tools_not_the_agent_holding_them_or_chains(
    store: Path, make_provider: MakeProvider
) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "openinference-1")
    kind = "openinference.span.kind"
    chain = rec.span("AgentWorkflow.run", 0, 100, {kind: "CHAIN", "input.value": "fix the TODO"})
    agent = rec.span("coder", 1, 99, {kind: "AGENT", "agent.name": "coder"}, parent=chain)
    ask = rec.span(
        "ChatCompletion",
        10,
        18,
        {
            kind: "LLM",
            "llm.model_name": "gpt-4o",
            "llm.provider": "openai",
            "llm.token_count.prompt": 700,
            "llm.token_count.completion": 30,
            "llm.token_count.total": 730,
            "llm.finish_reason": "tool_calls",
            "llm.input_messages.0.message.role": "user",
            "llm.input_messages.0.message.content": "fix the TODO",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.tool_calls.0.tool_call.id": "call_oi_1",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.name": "grep",
            "llm.output_messages.0.message.tool_calls.0.tool_call.function.arguments": '{"pattern": "TODO"}',
        },
        parent=agent,
        kind=SpanKind.CLIENT,
    )
    rec.span("parse tool calls", 19, 20, {kind: "CHAIN"}, parent=agent)  # a wrapper, not a step
    grep = rec.span(
        "grep",
        22,
        30,
        {
            kind: "TOOL",
            "tool.name": "grep",
            "tool.id": "call_oi_1",
            "input.value": '{"pattern": "TODO"}',
            "input.mime_type": "application/json",
            "output.value": "a.py:3: # TODO: fix",
        },
        parent=agent,
    )
    answer = rec.span(
        "ChatCompletion",
        40,
        50,
        {
            kind: "LLM",
            "llm.model_name": "gpt-4o",
            "llm.provider": "openai",
            "llm.token_count.prompt": 760,
            "llm.token_count.completion": 12,
            "llm.finish_reason": "stop",
            "llm.output_messages.0.message.role": "assistant",
            "llm.output_messages.0.message.content": "Fixed.",
        },
        parent=agent,
        kind=SpanKind.CLIENT,
    )
    provider.force_flush()

    rows = steps(store, "openinference-1")

    assert columns(rows) == [
        (1, "llm", "ChatCompletion", "gpt-4o", None, None, "tool_call", "tool_calls", 700, 30),
        (2, "tool", "grep", None, "grep", "call_oi_1", None, None, None, None),
        (3, "llm", "ChatCompletion", "gpt-4o", None, None, "stop", "stop", 760, 12),
    ]
    assert [row["span_id"] for row in rows] == [span_id(s) for s in (ask, grep, answer)]
    assert [row["provider"] for row in rows if row["kind"] == "llm"] == ["openai", "openai"]
    # Flattened messages come back as one JSON object, with the tool call id the TOOL span carries.
    requested = json.loads(rows[0]["output"])
    assert requested["llm.output_messages.0.message.tool_calls.0.tool_call.id"] == "call_oi_1"
    assert requested["llm.output_messages.0.message.tool_calls.0.tool_call.function.name"] == "grep"
    assert json.loads(rows[0]["input"])["llm.input_messages.0.message.content"] == "fix the TODO"
    assert (rows[1]["input"], rows[1]["output"]) == ('{"pattern": "TODO"}', "a.py:3: # TODO: fix")
    names = [r["name"] for r in query(store, "SELECT name FROM spans WHERE run_id = 'openinference-1'")]
    assert sorted(names) == sorted(
        ["AgentWorkflow.run", "coder", "ChatCompletion", "parse tool calls", "grep", "ChatCompletion"]
    )


def test_openinference_steps_tie_on_start_time_break_by_span_id(
    store: Path, make_provider: MakeProvider
) -> None:
    provider = make_provider(store)
    provider.id_generator = DescendingSpanIds()  # span-id order is the reverse of creation order
    rec = Recorder(provider, "openinference-tie")
    agent = rec.span("coder", 0, 100, {"openinference.span.kind": "AGENT"})
    for i, name in enumerate(("ls", "cat", "wc")):  # three tool calls started at the same instant
        rec.span(
            name,
            10,
            20 + i,
            {"openinference.span.kind": "TOOL", "tool.name": name, "tool.id": f"call_{name}"},
            parent=agent,
        )
    provider.force_flush()

    rows = steps(store, "openinference-tie")

    # Not creation order, end order or name order: the smallest span id first.
    assert [(r["step"], r["kind"], r["tool_name"], r["tool_call_id"]) for r in rows] == [
        (1, "tool", "wc", "call_wc"),
        (2, "tool", "cat", "call_cat"),
        (3, "tool", "ls", "call_ls"),
    ]
    assert agent and [r["span_id"] for r in rows] == sorted(r["span_id"] for r in rows)


# --------------------------------------------------------------------------------------------------
# OpenLLMetry / Traceloop


def write_openllmetry_run(store: Path, make_provider: MakeProvider, run_id: str) -> dict[str, Span]:
    """An OpenLLMetry run as its SDK and OpenAI instrumentation write it: workflow, agent and task
    spans from the decorators, `openai.chat` spans with flattened `gen_ai.prompt.*` and
    `gen_ai.completion.*` content, and a tool span from `@tool`."""
    provider = make_provider(store)
    rec = Recorder(provider, run_id)

    def traceloop(kind: str, name: str, **extra: str) -> dict[str, str]:
        return {"traceloop.span.kind": kind, "traceloop.entity.name": name, **extra}

    llm = {
        "llm.request.type": "chat",
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-4o",
        "gen_ai.response.model": "gpt-4o-2024-08-06",
    }
    spans: dict[str, Span] = {}
    spans["workflow"] = rec.span("fix_bug.workflow", 0, 100, traceloop("workflow", "fix_bug"))
    spans["agent"] = rec.span("coder.agent", 1, 99, traceloop("agent", "coder"), parent=spans["workflow"])
    spans["task"] = rec.span("plan.task", 2, 19, traceloop("task", "plan"), parent=spans["agent"])
    spans["ask"] = rec.span(
        "openai.chat",
        5,
        15,
        {
            **llm,
            "gen_ai.usage.prompt_tokens": 650,
            "gen_ai.usage.completion_tokens": 40,
            "llm.usage.total_tokens": 690,
            "gen_ai.prompt.0.role": "user",
            "gen_ai.prompt.0.content": "fix the TODO",
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.finish_reason": "tool_calls",
            "gen_ai.completion.0.tool_calls.0.id": "call_tl_1",
            "gen_ai.completion.0.tool_calls.0.name": "grep",
            "gen_ai.completion.0.tool_calls.0.arguments": '{"pattern": "TODO"}',
        },
        parent=spans["task"],
        kind=SpanKind.CLIENT,
    )
    spans["grep"] = rec.span(
        "grep.tool",
        20,
        30,
        traceloop(
            "tool",
            "grep",
            **{
                "traceloop.entity.input": '{"args": [], "kwargs": {"pattern": "TODO"}}',
                "traceloop.entity.output": '"a.py:3: # TODO: fix"',
            },
        ),
        parent=spans["agent"],
    )
    spans["answer"] = rec.span(
        "openai.chat",
        40,
        50,
        {
            **llm,
            "gen_ai.usage.prompt_tokens": 700,
            "gen_ai.usage.completion_tokens": 9,
            "gen_ai.completion.0.role": "assistant",
            "gen_ai.completion.0.content": "Fixed.",
            "gen_ai.completion.0.finish_reason": "stop",
        },
        parent=spans["agent"],
        kind=SpanKind.CLIENT,
    )
    provider.force_flush()
    return spans


def test_openllmetry_run_keeps_llms_and_tools_not_the_agent_holding_them_or_workflows(
    store: Path, make_provider: MakeProvider
) -> None:
    spans = write_openllmetry_run(store, make_provider, "openllmetry-1")

    rows = steps(store, "openllmetry-1")

    # OpenLLMetry's @tool spans carry no tool call id, so tool_call_id is not asserted here.
    assert columns(rows, ("step", "kind", "name", "model", "tool_name", "input_tokens", "output_tokens")) == [
        (1, "llm", "openai.chat", "gpt-4o-2024-08-06", None, 650, 40),
        (2, "tool", "grep.tool", None, "grep", None, None),
        (3, "llm", "openai.chat", "gpt-4o-2024-08-06", None, 700, 9),
    ]
    assert [row["span_id"] for row in rows] == [span_id(spans[key]) for key in ("ask", "grep", "answer")]
    assert [row["provider"] for row in rows if row["kind"] == "llm"] == ["openai", "openai"]
    assert (rows[1]["input"], rows[1]["output"]) == (
        '{"args": [], "kwargs": {"pattern": "TODO"}}',
        '"a.py:3: # TODO: fix"',
    )


def test_openllmetry_finish_reasons_are_normalised(store: Path, make_provider: MakeProvider) -> None:
    write_openllmetry_run(store, make_provider, "openllmetry-finish")

    rows = steps(store, "openllmetry-finish")

    assert [(r["finish_reason"], r["finish_reason_raw"]) for r in rows if r["kind"] == "llm"] == [
        ("tool_call", "tool_calls"),
        ("stop", "stop"),
    ]


def test_openllmetry_llm_steps_show_their_messages_and_requested_tool_call_ids(
    store: Path, make_provider: MakeProvider
) -> None:
    write_openllmetry_run(store, make_provider, "openllmetry-content")

    llm_rows = [r for r in steps(store, "openllmetry-content") if r["kind"] == "llm"]

    assert llm_rows[0]["input"] is not None and "fix the TODO" in llm_rows[0]["input"]
    assert llm_rows[0]["output"] is not None and "call_tl_1" in llm_rows[0]["output"]
    assert llm_rows[1]["output"] is not None and "Fixed." in llm_rows[1]["output"]


# --------------------------------------------------------------------------------------------------
# agenttrace's own API


def test_agenttrace_api_run_is_steps(configured: Path) -> None:
    @agenttrace.tool
    def read_file(path: str) -> str:
        return "# TODO: fix"

    with agenttrace.run("api-agent") as run:
        with agenttrace.step("plan"):
            pass
        t0 = time.time_ns()
        agenttrace.llm(
            "gpt-4o",
            provider="openai",
            input_messages=["fix the TODO"],
            output_messages=[
                {
                    "role": "assistant",
                    "tool_calls": [
                        {"id": "call_1", "type": "function", "function": {"name": "grep", "arguments": "{}"}}
                    ],
                }
            ],
            finish_reason="tool_calls",
            input_tokens=812,
            output_tokens=64,
            start_time=t0,
            end_time=t0 + 1_000,
        )
        with agenttrace.tool_call("grep", call_id="call_1", arguments={"pattern": "TODO"}) as call:
            call.set_result(["a.py:3"])
        read_file("a.py")
        t1 = time.time_ns()
        agenttrace.llm(
            "gpt-4o",
            provider="openai",
            output_messages=[{"role": "assistant", "content": "Fixed."}],
            finish_reason="stop",
            input_tokens=900,
            output_tokens=12,
            start_time=t1,
            end_time=t1 + 1_000,
        )
        with agenttrace.step("run tests", kind="verify"):
            pass

    rows = steps(configured, run.id, runs=[run.id])

    assert columns(rows) == [
        (1, "other", "plan", None, None, None, None, None, None, None),
        (2, "llm", "chat gpt-4o", "gpt-4o", None, None, "tool_call", "tool_calls", 812, 64),
        (3, "tool", "execute_tool grep", None, "grep", "call_1", None, None, None, None),
        (4, "tool", "execute_tool read_file", None, "read_file", None, None, None, None, None),
        (5, "llm", "chat gpt-4o", "gpt-4o", None, None, "stop", "stop", 900, 12),
        (6, "verify", "run tests", None, None, None, None, None, None, None),
    ]
    assert json.loads(rows[1]["output"]) == [
        {
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": "call_1", "name": "grep", "arguments": {}}],
        }
    ]
    assert (rows[2]["input"], rows[2]["output"]) == ('{"pattern": "TODO"}', '["a.py:3"]')
    assert (rows[3]["input"], rows[3]["output"]) == ('{"path": "a.py"}', "# TODO: fix")
    root = query(
        configured,
        "SELECT span_id FROM spans WHERE run_id = $r AND parent_span_id IS NULL",
        {"r": run.id},
        runs=[run.id],
    )
    assert [row["parent_span_id"] for row in rows] == [root[0]["span_id"]] * 6


# --------------------------------------------------------------------------------------------------
# Finish reason normalisation


@pytest.mark.parametrize(
    ("attribute", "raw", "expected"),
    [
        ("gen_ai.response.finish_reasons", "end_turn", "stop"),
        ("gen_ai.response.finish_reasons", "stop_sequence", "stop"),
        ("gen_ai.response.finish_reasons", "max_tokens", "length"),
        ("gen_ai.response.finish_reasons", "tool_use", "tool_call"),
        ("gen_ai.response.finish_reasons", "tool_calls", "tool_call"),
        ("gen_ai.response.finish_reasons", "function_call", "tool_call"),
        ("gen_ai.response.finish_reasons", "STOP", "stop"),
        ("gen_ai.response.finish_reasons", "MAX_TOKENS", "length"),
        ("gen_ai.response.finish_reasons", "SAFETY", "content_filter"),
        ("gen_ai.response.finish_reasons", "content_filter", "content_filter"),
        ("gen_ai.response.finish_reasons", "refusal", "refusal"),
        ("gen_ai.response.finish_reasons", "length", "length"),
        ("gen_ai.response.finish_reasons", "stop", "stop"),
        ("gen_ai.response.finish_reasons", "tool_call", "tool_call"),
        ("gen_ai.response.finish_reasons", "error", "error"),
        ("llm.finish_reason", "end_turn", "stop"),
        ("llm.finish_reason", "tool_calls", "tool_call"),
        ("llm.finish_reason", "MAX_TOKENS", "length"),
    ],
)
def test_finish_reason_is_normalised_and_raw_value_kept(
    store: Path, make_provider: MakeProvider, attribute: str, raw: str, expected: str
) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "finish")
    if attribute == "gen_ai.response.finish_reasons":  # a string array: stored as JSON array text
        attrs: dict[str, Any] = {
            "gen_ai.operation.name": "chat",
            "gen_ai.provider.name": "test",
            "gen_ai.request.model": "m",
            attribute: [raw],
        }
    else:
        attrs = {"openinference.span.kind": "LLM", "llm.model_name": "m", attribute: raw}
    rec.span("llm call", 0, 1, attrs, kind=SpanKind.CLIENT)
    provider.force_flush()

    rows = steps(store, "finish")

    assert [(r["kind"], r["finish_reason"], r["finish_reason_raw"]) for r in rows] == [("llm", expected, raw)]


# --------------------------------------------------------------------------------------------------
# Process, HTTP and unnamed tool spans


def process(pid: int, command_line: str, exit_code: int) -> dict[str, Any]:
    return {
        "agenttrace.span.type": "process",
        "process.pid": pid,
        "process.executable.name": command_line.split()[0],
        "process.command_line": command_line,
        "process.exit.code": exit_code,
    }


def test_only_processes_the_agent_spawns_itself_are_steps(store: Path, make_provider: MakeProvider) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "processes-1")
    root = rec.span("agent run", 0, 100, {"agenttrace.span.type": "run"})
    status = rec.span("git", 5, 10, process(4242, "git status --short", 0), parent=root)
    rec.span(  # the model call's transport: a plain HTTP client span is not a step
        "POST",
        12,
        18,
        {
            "http.request.method": "POST",
            "url.full": "https://api.openai.com/v1/chat/completions",
            "server.address": "api.openai.com",
            "http.response.status_code": 200,
        },
        parent=root,
        kind=SpanKind.CLIENT,
    )
    tool = rec.span(
        "execute_tool run_tests",
        20,
        60,
        {
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "run_tests",
            "gen_ai.tool.call.id": "call_7",
        },
        parent=root,
    )
    pytest_proc = rec.span("python", 21, 59, process(4300, "python -m pytest -q", 1), parent=tool)
    rec.span("python", 22, 58, process(4301, "python -c work()", 0), parent=pytest_proc)
    lint = rec.span("make", 70, 80, process(4400, "make lint", 2), parent=root)
    agent = rec.span("invoke_agent reviewer", 85, 99, {"gen_ai.operation.name": "invoke_agent"}, parent=root)
    listing = rec.span("ls", 86, 87, process(4500, "ls -la", 0), parent=agent)
    provider.force_flush()

    rows = steps(store, "processes-1")

    assert [(r["step"], r["kind"], r["name"], r["tool_name"], r["tool_call_id"]) for r in rows] == [
        (1, "process", "git", None, None),
        (2, "tool", "execute_tool run_tests", "run_tests", "call_7"),
        (3, "process", "make", None, None),
        (4, "agent", "invoke_agent reviewer", None, None),
        (5, "process", "ls", None, None),
    ]
    assert [row["span_id"] for row in rows] == [span_id(s) for s in (status, tool, lint, agent, listing)]
    assert [(r["input"], r["output"]) for r in rows if r["kind"] == "process"] == [
        ("git status --short", "0"),
        ("make lint", "2"),
        ("ls -la", "0"),
    ]
    # The process the tool ran is recorded, as the tool step's child, not as a step of its own.
    children = query(
        store,
        "SELECT pid, exit_code, parent_span_id FROM processes WHERE run_id = 'processes-1' ORDER BY pid",
    )
    assert [(c["pid"], c["exit_code"], c["parent_span_id"]) for c in children] == [
        (4242, 0, span_id(root)),
        (4300, 1, span_id(tool)),
        (4301, 0, span_id(pytest_proc)),
        (4400, 2, span_id(root)),
        (4500, 0, span_id(agent)),
    ]
    assert query(store, "SELECT count(*) AS n FROM spans WHERE run_id = 'processes-1'") == [{"n": 9}]


def test_tool_without_a_name_has_a_null_tool_name(store: Path, make_provider: MakeProvider) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "unnamed-tool")
    rec.span("tool", 0, 1, {"openinference.span.kind": "TOOL", "input.value": "{}"})
    provider.force_flush()

    rows = steps(store, "unnamed-tool")

    assert [(r["kind"], r["tool_name"]) for r in rows] == [("tool", None)]
