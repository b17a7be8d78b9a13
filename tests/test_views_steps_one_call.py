"""One LLM call, one step: the rule of the `steps` view that counts the LLM spans of one request
once (a framework's span over the SDK instrumentor's span of the request, two instrumentors of one
SDK, a callback instrumentor's span beside the SDK's), on spans written with the SDK. The real
frameworks that need it run in test_supervise_frameworks.py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from conftest import query
from opentelemetry.sdk.trace import TracerProvider
from test_views_steps import Recorder, span_id

MakeProvider = Callable[..., TracerProvider]


def genai(model: str, tokens: tuple[int, int] | None, finish: str | None = "stop") -> dict[str, Any]:
    attributes: dict[str, Any] = {"gen_ai.operation.name": "chat", "gen_ai.request.model": model}
    if tokens:
        attributes |= {"gen_ai.usage.input_tokens": tokens[0], "gen_ai.usage.output_tokens": tokens[1]}
    if finish:
        attributes["gen_ai.response.finish_reasons"] = [finish]
    return attributes


def openinference(model: str | None, tokens: tuple[int, int] | None, finish: str | None = "stop") -> dict:
    attributes: dict[str, Any] = {"openinference.span.kind": "LLM", "llm.system": "openai"}
    if model:
        attributes["llm.model_name"] = model
    if tokens:
        attributes |= {"llm.token_count.prompt": tokens[0], "llm.token_count.completion": tokens[1]}
    if finish:
        attributes["llm.finish_reason"] = finish
    return attributes


def llm_steps(store: Path, run_id: str) -> list[tuple[Any, ...]]:
    rows = query(
        store,
        "SELECT step, name, span_id, model, input_tokens, output_tokens, finish_reason, status_code "
        "FROM steps WHERE run_id = $r AND kind = 'llm' ORDER BY step",
        {"r": run_id},
    )
    return [tuple(r.values()) for r in rows]


def test_a_framework_span_over_the_sdk_span_of_one_request_is_one_step(
    store: Path, make_provider: MakeProvider
) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "nested")
    agent = rec.span("invoke_agent files", 0, 100, {"gen_ai.operation.name": "invoke_agent"})
    chat = rec.span("chat m", 1, 30, genai("m", (100, 7), "tool_call"), parent=agent)
    http = rec.span("POST", 2, 29, {"http.request.method": "POST"}, parent=chat)  # not a step
    sdk = rec.span("ChatCompletion", 3, 28, openinference("m", (100, 7), "tool_calls"), parent=http)
    tool = rec.span("execute_tool ls", 31, 35, {"gen_ai.operation.name": "execute_tool"}, parent=agent)
    second = rec.span("chat m", 40, 60, genai("m", (120, 9)), parent=agent)
    sdk2 = rec.span("ChatCompletion", 41, 59, openinference("m", (120, 9)), parent=second)
    provider.force_flush()
    assert llm_steps(store, "nested") == [
        (1, "ChatCompletion", span_id(sdk), "m", 100, 7, "tool_call", "Unset"),
        (3, "ChatCompletion", span_id(sdk2), "m", 120, 9, "stop", "Unset"),
    ]
    assert [r["span_id"] for r in query(store, "SELECT span_id FROM steps WHERE kind = 'tool'")] == [
        span_id(tool)
    ]


def test_a_callback_instrumentor_span_beside_the_sdk_span_is_the_same_call_when_time_and_usage_agree(
    store: Path, make_provider: MakeProvider
) -> None:
    """OpenInference's LangChain spans are not current: the SDK span of the same request is their
    sibling, not their child. Same trace, within it in time, same tokens and model: one call."""
    provider = make_provider(store)
    rec = Recorder(provider, "siblings")
    graph = rec.span("LangGraph", 0, 100, {"openinference.span.kind": "CHAIN"})
    framework = rec.span("ChatOpenAI", 1, 30, openinference("m", (50, 5)), parent=graph)
    sdk = rec.span("ChatCompletion", 2, 29, openinference("m", (50, 5)), parent=graph)
    # later, the same prompt again: the same usage, but another call (not within the first)
    again = rec.span("ChatCompletion", 40, 60, openinference("m", (50, 5)), parent=graph)
    # a call overlapping the first with other token counts is another call too
    other = rec.span("ChatCompletion", 10, 20, openinference("m", (51, 5)), parent=graph)
    provider.force_flush()
    rows = llm_steps(store, "siblings")
    assert [r[2] for r in rows] == [span_id(sdk), span_id(other), span_id(again)]
    assert span_id(framework) not in [r[2] for r in rows]


def test_a_framework_span_over_two_requests_counts_the_two_requests(
    store: Path, make_provider: MakeProvider
) -> None:
    """A retried request under one framework span: what was billed is the two requests."""
    provider = make_provider(store)
    rec = Recorder(provider, "retried")
    chat = rec.span("chat m", 0, 50, genai("m", (30, 5)))
    first = rec.span("ChatCompletion", 1, 10, openinference("m", (30, 0), None), parent=chat, error="503")
    retry = rec.span("ChatCompletion", 20, 49, openinference("m", (30, 5)), parent=chat)
    provider.force_flush()
    rows = llm_steps(store, "retried")
    assert [r[2] for r in rows] == [span_id(first), span_id(retry)]
    assert sum(r[4] for r in rows) == 60


def test_the_richest_span_of_a_call_is_its_step_and_takes_what_the_others_know(
    store: Path, make_provider: MakeProvider
) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "richest")
    # openai-agents over the Responses API: its span has the finish reason, the SDK's does not
    response = rec.span("response", 0, 20, openinference("m", (70, 8), "stop"))
    rec.span("Response", 1, 19, openinference("m", (70, 8), None), parent=response)
    # the framework refused an incomplete response: its span is an error without usage; the SDK's
    # has the usage. One step: the SDK's span, in error, with the usage.
    refused = rec.span("response", 30, 50, openinference(None, None, None), error="response.incomplete")
    incomplete = rec.span("Response", 31, 49, openinference("m", (90, 16), None), parent=refused)
    provider.force_flush()
    rows = llm_steps(store, "richest")
    assert rows == [
        (1, "response", span_id(response), "m", 70, 8, "stop", "Unset"),
        (2, "Response", span_id(incomplete), "m", 90, 16, None, "Error"),
    ]
    (step,) = query(store, "SELECT status_message FROM steps WHERE span_id = $s", {"s": span_id(incomplete)})
    assert step["status_message"] == "response.incomplete"


def test_llm_calls_made_inside_a_tool_are_their_own_steps(store: Path, make_provider: MakeProvider) -> None:
    provider = make_provider(store)
    rec = Recorder(provider, "subagent")
    outer = rec.span("chat m", 0, 100, genai("m", (10, 1)))
    tool = rec.span("execute_tool ask", 1, 99, {"gen_ai.operation.name": "execute_tool"}, parent=outer)
    inner = rec.span("chat m", 2, 98, genai("m", (10, 1)), parent=tool)
    provider.force_flush()
    assert [r[2] for r in llm_steps(store, "subagent")] == [span_id(outer), span_id(inner)]


def test_the_rule_leaves_other_runs_alone(store: Path, make_provider: MakeProvider) -> None:
    provider = make_provider(store)
    a, b = Recorder(provider, "run-a"), Recorder(provider, "run-b")
    a.span("chat m", 0, 10, genai("m", (5, 1)))
    b.span("chat m", 0, 10, genai("m", (5, 1)))
    provider.force_flush()
    assert len(llm_steps(store, "run-a")) == 1 and len(llm_steps(store, "run-b")) == 1


def test_the_same_answer_again_right_after_the_first_ended_is_another_call(
    store: Path, make_provider: MakeProvider
) -> None:
    """Two requests in a row with the same usage (the same prompt, a canned answer), the second made
    and answered within a millisecond of the first's end: two calls, not one. Taken for one, the
    last answer (cut off here) would be lost, or would lend its finish reason to the first."""
    provider = make_provider(store)
    rec = Recorder(provider, "in-a-row")
    agent = rec.span("agent", 0, 10, {})
    first = rec.span("chat m", 0.1, 3.4, genai("m", (11, 2), "stop"), parent=agent)
    second = rec.span("chat m", 3.55, 4.35, genai("m", (11, 2), "length"), parent=agent)
    provider.force_flush()
    rows = llm_steps(store, "in-a-row")
    assert [(r[2], r[6]) for r in rows] == [(span_id(first), "stop"), (span_id(second), "length")]
