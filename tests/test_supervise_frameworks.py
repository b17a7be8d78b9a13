"""Zero-code Python: the agent frameworks people use now, under `agenttrace run` with no agenttrace
code in the agent, against the scripted OpenAI-compatible fake model on loopback
(examples/fake_model_server.py). And one LLM call is one step, however many instrumentors recorded it.

The agents are in tests/frameworks/: pydantic-ai, LangGraph (langchain-core, langgraph and
langchain-openai, never `langchain`), the OpenAI Agents SDK (Responses API and chat completions),
LiteLLM (over the OpenAI SDK) and, against the Anthropic Messages fake of tests/agents, the
Anthropic SDK alone. All but the last have three file tools; the fake model asks for `list_files`,
then `read_file` and `word_count` together, then answers. Two OpenAI instrumentors are installed in
the test environment (OpenInference's and the official `opentelemetry-instrumentation-openai-v2`),
two Anthropic ones and two LiteLLM ones (OpenInference's and OpenLLMetry's), so every run here also
checks that one LLM call is counted once.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import query, run_cli

from agenttrace.supervise import bootstrap

REPO = Path(__file__).resolve().parents[1]
FRAMEWORKS = REPO / "tests" / "frameworks"
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(REPO / "tests" / "agents"))
from fake_model_server import FakeModelServer, start_in_thread  # noqa: E402
from fake_servers import PROMPT, FakeAnthropicServer  # noqa: E402

# The rule that makes the LLM spans of one call one step, on spans written with the SDK, is in
# test_views_steps_one_call.py.

TASK = "Which file lists the inventory?"
OFFLINE = {"LITELLM_LOCAL_MODEL_COST_MAP": "True"}
"""LiteLLM fetches its model cost map from GitHub at import unless told to use the copy it ships."""
TOOLS = ["list_files", "read_file", "word_count"]
AGENTS = {
    "pydantic-ai": ["pydantic_ai_agent.py"],
    "langgraph": ["langgraph_agent.py"],
    "openai-agents": ["openai_agents_agent.py"],  # the Responses API, the SDK's default
    "openai-agents-chat": ["openai_agents_agent.py", "--chat"],
}
"""Agents whose framework records its tool calls as tool spans."""
LITELLM = ["litellm_agent.py"]
"""LiteLLM has no tools: the agent's tools run commands, which are recorded as processes."""
CUT_SHORT = "the last LLM response was cut short (finish reason "


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
    env: dict[str, str] | None = None,
) -> Any:
    """`agenttrace run --json [OPTIONS] -- python [PREFIX] AGENT MODEL TASK [FLAGS]`, in a directory
    with two files, the agent pointed at the fake model server (ENV added to its environment)."""
    (tmp_path / "inventory.md").write_text("# Inventory\nThree boxes of screws.\nTwo hammers.\n")
    (tmp_path / "notes.txt").write_text("misc notes\n")
    script, *flags = agent
    return run_cli(
        "run", "--json", "--store", str(tmp_path / "store"), *options, "--",
        sys.executable, *prefix, str(FRAMEWORKS / script), model, TASK, *flags,
        cwd=tmp_path,
        timeout=120,
        env={"OPENAI_BASE_URL": server.base_url, "OPENAI_API_KEY": "sk-not-a-real-key", **OFFLINE,
             **(env or {})},
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
    assert [i.distribution for i in found["litellm"]] == [
        "openinference-instrumentation-litellm",
        "opentelemetry-instrumentation-litellm",
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
if "litellm" in modules:
    from openinference.instrumentation.litellm import LiteLLMInstrumentor
    from opentelemetry.instrumentation.litellm import LiteLLMInstrumentor as OpenLLMetry
    state["litellm"] = LiteLLMInstrumentor().is_instrumented_by_opentelemetry
    state["litellm_openllmetry"] = OpenLLMetry().is_instrumented_by_opentelemetry
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
    gets one instrumentor of the two installed, and so does LiteLLM (which imports the OpenAI SDK);
    pydantic-ai its own instrumentation. (Each probe is a Python process the agent starts,
    instrumented like the agent.)"""
    (tmp_path / "probe.py").write_text(PROBE)
    (tmp_path / "probes.py").write_text(PROBES)
    modules = [
        "langgraph",
        "langchain_core.messages",
        "langchain_openai",
        "agents",
        "pydantic_ai",
        "litellm",
        "json",
    ]
    result = run_cli(
        "run", "--store", str(tmp_path / "store"), "--", sys.executable, "probes.py", *modules,
        cwd=tmp_path, timeout=120, env=OFFLINE,
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
        "litellm": {**nothing, **one_openai, "litellm": True, "litellm_openllmetry": False},
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


def test_a_litellm_agent_whose_tools_run_commands_succeeds_with_its_steps_and_billed_tokens(
    tmp_path: Path, model_server: FakeModelServer
) -> None:
    """Each `litellm.completion` is recorded twice, by the LiteLLM instrumentor chosen (OpenInference's,
    not OpenLLMetry's) and, under it, by the OpenAI SDK's (one of the two installed): one step a
    call. The tools' commands are its other steps, in order."""
    result = run_agent(tmp_path, model_server, LITELLM)
    assert result.returncode == 0, result.stderr
    assert verdict(result)["state"] == "succeeded"
    assert gates(result)["completion_signal"] == "pass"
    assert "`inventory.md` best matches the task. It has 3 lines and 8 words" in result.stdout
    store = tmp_path / "store"
    scopes = query(
        store,
        "SELECT scope_name, count(*) AS n FROM spans WHERE scope_name LIKE '%instrumentation%' GROUP BY ALL",
    )
    assert {s["scope_name"]: s["n"] for s in scopes} == {
        "openinference.instrumentation.litellm": 3,
        "openinference.instrumentation.openai": 3,
    }
    steps = [s for s in query(store, "SELECT * FROM steps ORDER BY step") if s["kind"] in ("llm", "process")]
    assert [(s["kind"], s["name"]) for s in steps] == [
        ("llm", "ChatCompletion"),
        ("process", "process find"),
        ("llm", "ChatCompletion"),
        ("process", "process cat"),
        ("process", "process wc"),
        ("llm", "ChatCompletion"),
    ]
    llm = [s for s in steps if s["kind"] == "llm"]
    assert [(s["model"], s["finish_reason"]) for s in llm] == [
        ("fake-gpt", "tool_call"), ("fake-gpt", "tool_call"), ("fake-gpt", "stop")
    ]  # fmt: skip
    assert len(model_server.responses) == 3
    totals = llm_totals(store)
    assert totals == {"calls": 3, **model_server.billed()}


@pytest.mark.parametrize("framework", [*AGENTS, "litellm"])
def test_a_framework_agent_whose_final_answer_is_cut_off_fails_on_completion_signal(
    tmp_path: Path, model_server: FakeModelServer, framework: str
) -> None:
    """Whatever the framework does with the cut-off answer (hands it on, or refuses it and the agent
    exits 1), the reason is that the answer was cut short."""
    agent = LITELLM if framework == "litellm" else AGENTS[framework]
    result = run_agent(tmp_path, model_server, agent, model="fake-truncating")
    assert result.returncode == 1, result.stderr
    assert verdict(result)["state"] == "failed"
    assert gates(result)["completion_signal"] == "fail", verdict(result)["reasons"]
    (signal,) = [r for r in verdict(result)["reasons"] if r.startswith("completion_signal: ")]
    assert signal.removeprefix("completion_signal: ").startswith(CUT_SHORT), signal
    totals = llm_totals(tmp_path / "store")
    assert totals["calls"] == 3
    assert {k: totals[k] for k in ("input_tokens", "output_tokens")} == model_server.billed()


def test_a_responses_api_answer_cut_off_reads_as_cut_short_with_outputs_hidden(
    tmp_path: Path, model_server: FakeModelServer
) -> None:
    """The Responses API has no finish reason: the cut-off is in the response's `incomplete_details`,
    which the OpenAI SDK's span records in its output. With outputs hidden, what says so is the error
    the OpenAI Agents SDK raised on the incomplete response."""
    hidden = {"OPENINFERENCE_HIDE_OUTPUTS": "true"}
    result = run_agent(tmp_path, model_server, AGENTS["openai-agents"], model="fake-truncating", env=hidden)
    assert result.returncode == 1, result.stderr
    (step,) = query(
        tmp_path / "store",
        "SELECT output, status_code FROM steps WHERE kind = 'llm' ORDER BY step DESC LIMIT 1",
    )
    assert step == {"output": "__REDACTED__", "status_code": "Error"}
    (violation,) = next(g for g in verdict(result)["gates"] if g["name"] == "completion_signal")["violations"]
    assert violation["finish_reason"] == "max_output_tokens"
    assert violation["reason"].startswith(CUT_SHORT + "`max_output_tokens`)")


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
