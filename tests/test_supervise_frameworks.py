"""Zero-code Python: the agent frameworks people use now, under `agenttrace run` with no agenttrace
code in the agent, against the scripted OpenAI-compatible fake model on loopback
(examples/fake_model_server.py). And one LLM call is one step, however many instrumentors recorded it.

The agents are in tests/frameworks/: pydantic-ai, LangGraph (langchain-core, langgraph and
langchain-openai, never `langchain`), the OpenAI Agents SDK (Responses API and chat completions)
and, against the Anthropic Messages fake of tests/agents, the Anthropic SDK alone. The first three
have three file tools; the fake model asks for `list_files`, then `read_file` and `word_count`
together, then answers. Two OpenAI instrumentors are installed in the test environment
(OpenInference's and the official `opentelemetry-instrumentation-openai-v2`), and two Anthropic ones
(OpenInference's and OpenLLMetry's), so every run here also checks that one LLM call is counted
once.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import query, run_cli
from opentelemetry.sdk.trace import TracerProvider
from test_views_steps import Recorder, span_id

from agenttrace.supervise import bootstrap

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = REPO / "tests" / "frameworks"
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(REPO / "tests" / "agents"))
from fake_model_server import FakeModelServer, start_in_thread  # noqa: E402
from fake_servers import PROMPT, FakeAnthropicServer  # noqa: E402

TASK = "Which file lists the inventory?"
TOOLS = ["list_files", "read_file", "word_count"]
AGENTS = {
    "pydantic-ai": ["pydantic_ai_agent.py"],
    "langgraph": ["langgraph_agent.py"],
    "openai-agents": ["openai_agents_agent.py"],  # the Responses API, the SDK's default
    "openai-agents-chat": ["openai_agents_agent.py", "--chat"],
}


@pytest.fixture
def model_server() -> Iterator[FakeModelServer]:
    server, _ = start_in_thread()
    yield server
    server.shutdown()
    server.server_close()


def run_agent(
    tmp_path: Path,
    server: FakeModelServer,
    agent: list[str],
    model: str = "fake-gpt",
    options: tuple[str, ...] = (),
    prefix: tuple[str, ...] = (),
) -> Any:
    """`agenttrace run --json [OPTIONS] -- python [PREFIX] AGENT MODEL TASK [FLAGS]`, in a directory
    with two files, the agent pointed at the fake model server."""
    (tmp_path / "inventory.md").write_text("# Inventory\nThree boxes of screws.\nTwo hammers.\n")
    (tmp_path / "notes.txt").write_text("misc notes\n")
    script, *flags = agent
    return run_cli(
        "run", "--json", "--store", str(tmp_path / "store"), *options, "--",
        sys.executable, *prefix, str(FRAMEWORKS / script), model, TASK, *flags,
        cwd=tmp_path,
        timeout=120,
        env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-not-a-real-key"},
    )  # fmt: skip


def verdict(result: Any) -> dict[str, Any]:
    """The `--json` verdict, printed after what the agent printed."""
    lines = result.stdout.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            with contextlib.suppress(ValueError):
                return json.loads("\n".join(lines[start:]))
    raise AssertionError(f"no verdict in {result.stdout!r}")


def gates(result: Any) -> dict[str, str]:
    return {g["name"]: g["status"] for g in verdict(result)["gates"]}


def llm_totals(store: Path) -> dict[str, int]:
    (row,) = query(
        store,
        "SELECT count(*) AS calls, sum(input_tokens) AS input_tokens, sum(output_tokens) AS output_tokens "
        "FROM steps WHERE kind = 'llm'",
    )
    return row


# -- which instrumentor, and when ------------------------------------------------------------------


def test_each_library_has_one_instrumentor_chosen_by_the_preference_order() -> None:
    found = bootstrap.genai_instrumentors()
    assert [i.distribution for i in found["openai"]] == [
        "openinference-instrumentation-openai",
        "opentelemetry-instrumentation-openai-v2",
    ]
    assert [i.distribution for i in found["pydantic_ai"]] == ["pydantic-ai-slim"]
    assert found["langchain"][0].distribution == "openinference-instrumentation-langchain"
    assert found["openai_agents"][0].distribution == "openinference-instrumentation-openai-agents"
    assert [i.distribution for i in found["anthropic"]] == [
        "openinference-instrumentation-anthropic",
        "opentelemetry-instrumentation-anthropic",
    ]
    for library, preferred in bootstrap.PREFERENCE.items():
        assert library in bootstrap.TRIGGERS, f"{library} has no trigger modules"
        assert len(set(preferred)) == len(preferred)


def test_instrumentors_can_be_left_out_as_opentelemetry_instrument_allows(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_PYTHON_DISABLED_INSTRUMENTATIONS", "openai, pydantic_ai")
    found = bootstrap.genai_instrumentors()
    assert "openai" not in found and "pydantic_ai" not in found and "langchain" in found


PROBE = """
import importlib, json, sys
importlib.import_module(sys.argv[1])
# What is instrumented now, looked at without importing anything that could turn more on
modules = sys.modules
callbacks = modules.get("langchain_core.callbacks")
agent = getattr(modules.get("pydantic_ai"), "Agent", None)
state = {
    "langchain": callbacks is not None and hasattr(callbacks.BaseCallbackManager.__init__, "__wrapped__"),
    "pydantic_ai": agent is not None and agent._instrument_default is True,
    "langchain imported": "langchain" in modules,
}
if "openai" in modules:
    from openinference.instrumentation.openai import OpenAIInstrumentor
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor as Official
    state["openai"] = OpenAIInstrumentor().is_instrumented_by_opentelemetry
    state["openai_v2"] = Official().is_instrumented_by_opentelemetry
if "agents" in modules:
    from openinference.instrumentation.openai_agents import OpenAIAgentsInstrumentor
    state["openai_agents"] = OpenAIAgentsInstrumentor().is_instrumented_by_opentelemetry
print(json.dumps(state))
"""

PROBES = """
import json, subprocess, sys
found = {m: json.loads(subprocess.run([sys.executable, "probe.py", m], capture_output=True, text=True,
                                     check=True).stdout) for m in sys.argv[1:]}
print(json.dumps(found))
"""


def test_the_first_module_of_a_library_imported_turns_its_instrumentor_on(tmp_path: Path) -> None:
    """A LangGraph program never imports `langchain`: langgraph, langchain_core or
    langchain_openai, whichever comes first, turns the LangChain instrumentor on. The OpenAI SDK
    gets one instrumentor of the two installed; pydantic-ai its own instrumentation. (Each probe is
    a Python process the agent starts, instrumented like the agent.)"""
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "probes.py").write_text(PROBES)
    modules = ["langgraph", "langchain_core.messages", "langchain_openai", "agents", "pydantic_ai", "json"]
    result = run_cli(
        "run", "--store", str(tmp_path / "store"), "--", sys.executable, "probes.py", *modules,
        cwd=tmp_path, timeout=120,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    nothing = {"langchain": False, "pydantic_ai": False, "langchain imported": False}
    langchain = {**nothing, "langchain": True}
    one_openai = {"openai": True, "openai_v2": False}
    assert found == {
        "langgraph": langchain,
        "langchain_core.messages": langchain,
        "langchain_openai": {**langchain, **one_openai},
        "agents": {**nothing, **one_openai, "openai_agents": True},
        "pydantic_ai": {**nothing, "pydantic_ai": True},
        "json": nothing,
    }


def test_outside_agenttrace_run_nothing_is_turned_on(tmp_path: Path) -> None:
    (tmp_path / "probe.py").write_text(PROBE)
    result = subprocess.run(
        [sys.executable, "probe.py", "langchain_openai"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120, check=True,
    )  # fmt: skip
    off = {"langchain": False, "pydantic_ai": False, "langchain imported": False}
    assert json.loads(result.stdout) == {**off, "openai": False, "openai_v2": False}


# -- real frameworks, zero code --------------------------------------------------------------------


@pytest.mark.parametrize("framework", list(AGENTS))
def test_a_framework_agent_with_tool_calls_succeeds_with_its_steps_and_billed_tokens(
    tmp_path: Path, model_server: FakeModelServer, framework: str
) -> None:
    result = run_agent(tmp_path, model_server, AGENTS[framework])
    assert result.returncode == 0, result.stderr
    assert verdict(result)["state"] == "succeeded"
    statuses = gates(result)
    assert (statuses["completion_signal"], statuses["tool_calls_returned"]) == ("pass", "pass")
    steps = query(tmp_path / "store", "SELECT * FROM steps ORDER BY step")
    llm = [s for s in steps if s["kind"] == "llm"]
    tools = [s["tool_name"] for s in steps if s["kind"] == "tool"]
    assert len(model_server.responses) == 3
    assert len(llm) == 3, [(s["name"], s["span_id"]) for s in llm]
    assert tools[0] == "list_files" and sorted(tools[1:]) == ["read_file", "word_count"]
    assert [s["model"] for s in llm] == ["fake-gpt"] * 3
    assert llm[-1]["finish_reason"] == "stop"
    # in order: the model asks, the tool runs, the model asks again, ...
    kinds = [s["kind"] for s in steps if s["kind"] in ("llm", "tool")]
    assert kinds == ["llm", "tool", "llm", "tool", "tool", "llm"]
    totals = llm_totals(tmp_path / "store")
    assert {k: totals[k] for k in ("input_tokens", "output_tokens")} == model_server.billed()


@pytest.mark.parametrize("framework", list(AGENTS))
def test_a_framework_agent_whose_final_answer_is_cut_off_fails_on_completion_signal(
    tmp_path: Path, model_server: FakeModelServer, framework: str
) -> None:
    result = run_agent(tmp_path, model_server, AGENTS[framework], model="fake-truncating")
    assert result.returncode == 1, result.stderr
    assert verdict(result)["state"] == "failed"
    assert gates(result)["completion_signal"] == "fail", verdict(result)["reasons"]
    totals = llm_totals(tmp_path / "store")
    assert totals["calls"] == 3
    assert {k: totals[k] for k in ("input_tokens", "output_tokens")} == model_server.billed()


@pytest.mark.parametrize("scenario", ["happy", "truncated"])
def test_an_agent_on_the_anthropic_sdk_counts_each_call_once(tmp_path: Path, scenario: str) -> None:
    """The bootstrap turns on one of the two Anthropic instrumentors installed (OpenInference's, not
    OpenLLMetry's); the Anthropic SDK (1.x) also records its own GenAI span of each call under
    it: two spans a call, one step. The fake Messages API is the one the Claude Code tests use
    (tests/agents/fake_servers.py)."""
    with FakeAnthropicServer(scenario) as server:
        result = run_cli(
            "run", "--json", "--store", str(tmp_path / "store"), "--",
            sys.executable, str(FRAMEWORKS / "anthropic_agent.py"), "claude-fake", PROMPT,
            cwd=tmp_path, timeout=120,
            env={"ANTHROPIC_BASE_URL": server.url, "ANTHROPIC_API_KEY": "sk-ant-not-a-real-key"},
        )  # fmt: skip
        billed = server.billed()
    assert (tmp_path / "out.txt").read_text() == "hello\n"
    scopes = {
        s["scope_name"]
        for s in query(tmp_path / "store", "SELECT DISTINCT scope_name FROM spans WHERE kind IS NOT NULL")
    }
    assert "openinference.instrumentation.anthropic" in scopes
    assert "opentelemetry.instrumentation.anthropic" not in scopes
    assert llm_totals(tmp_path / "store") == {
        "calls": 2,
        "input_tokens": billed["input_tokens"],
        "output_tokens": billed["output_tokens"],
    }
    if scenario == "happy":
        assert result.returncode == 0, result.stderr
        assert gates(result)["completion_signal"] == "pass"
    else:
        assert result.returncode == 1, result.stderr
        assert gates(result)["completion_signal"] == "fail"


DOUBLY_INSTRUMENTED = """
# The program turns on the official OpenAI instrumentor itself, on top of the one the bootstrap
# chose: each request is now recorded by pydantic-ai, OpenInference and the official instrumentor.
import runpy, sys
from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor
OpenAIInstrumentor().instrument()
sys.argv = sys.argv[1:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def test_three_llm_spans_of_one_call_count_once_in_steps_and_in_the_budget(
    tmp_path: Path, model_server: FakeModelServer
) -> None:
    (tmp_path / "doubly.py").write_text(DOUBLY_INSTRUMENTED)
    (tmp_path / "objective.toml").write_text("[limits]\ntokens = 100\n")
    result = run_agent(
        tmp_path,
        model_server,
        AGENTS["pydantic-ai"],
        options=("--objective", str(tmp_path / "objective.toml")),
        prefix=("doubly.py",),
    )
    store = tmp_path / "store"
    spans = query(
        store,
        "SELECT count(*) AS n FROM spans WHERE attributes['gen_ai.operation.name'] = 'chat' "
        "OR attributes['openinference.span.kind'] = 'LLM'",
    )
    assert spans[0]["n"] == 9, "three calls, each recorded by three instrumentors"
    billed = model_server.billed()
    totals = llm_totals(store)
    assert totals == {"calls": 3, **billed}
    assert result.returncode == 1
    (over,) = next(g for g in verdict(result)["gates"] if g["name"] == "budget")["violations"]
    assert over["used"] == billed["input_tokens"] + billed["output_tokens"]
    assert over["reason"].startswith(f"the run used {int(over['used'])} tokens in 3 LLM call(s)")


# -- the rule, on spans written with the SDK -------------------------------------------------------
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
        (2, "ChatCompletion", span_id(sdk), "m", 100, 7, "tool_call", "Unset"),
        (4, "ChatCompletion", span_id(sdk2), "m", 120, 9, "stop", "Unset"),
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
