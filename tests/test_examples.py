"""The sample agent of `make demo`, run as a user runs it, and the fake model server it talks to."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from conftest import REPO, query

import agenttrace

EXAMPLES = REPO / "examples"
TASK = "Find the sample agent among the files in the examples directory and tell me how long it is."


def load_example(name: str) -> ModuleType:
    """examples/NAME.py as a module (examples/ is not a package)."""
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


fake = load_example("fake_model_server")


@pytest.fixture
def server() -> Iterator[Any]:
    """A fake model server in a thread of this process; its `responses` are what it sent."""
    srv, _ = fake.start_in_thread()
    yield srv
    srv.shutdown()
    srv.server_close()


def run_agent(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the sample agent in a fresh interpreter, recording into `store`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OPENAI_")}
    env["AGENTTRACE_STORE"] = str(store)
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "research_agent.py"), *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result


def only_run(store: Path) -> dict[str, Any]:
    runs = query(store, "SELECT run_id, name, state, objective FROM runs")
    assert len(runs) == 1
    return runs[0]


def steps_of(store: Path, run_id: str) -> list[dict[str, Any]]:
    return query(
        store,
        """SELECT st.step, st.kind, st.name, st.model, st.tool_name, st.tool_call_id, st.finish_reason,
                  st.finish_reason_raw, st.input_tokens, st.output_tokens, st.input, st.output,
                  st.status_code, sp.attributes['gen_ai.response.id'] AS response_id
           FROM steps st JOIN spans sp USING (run_id, span_id)
           WHERE st.run_id = $run_id ORDER BY st.step""",
        {"run_id": run_id},
    )


def requested_calls(llm_step: dict[str, Any]) -> list[tuple[str, str]]:
    """(id, tool name) of each tool call in an LLM step's recorded output messages."""
    return [
        (part["id"], part["name"])
        for message in json.loads(llm_step["output"])
        for part in message["parts"]
        if part["type"] == "tool_call"
    ]


def test_agent_run_records_model_turns_and_linked_tool_calls(store: Path, server: Any) -> None:
    result = run_agent(store, "--base-url", server.base_url, "--model", "fake-gpt", "--task", TASK)

    run = only_run(store)
    assert (run["name"], run["state"], run["objective"]) == ("research-agent", "succeeded", TASK)
    assert run["run_id"] in result.stdout

    steps = steps_of(store, run["run_id"])
    assert [s["kind"] for s in steps] == ["other", "llm", "tool", "llm", "tool", "tool", "llm"]
    assert all(s["status_code"] != "Error" for s in steps)

    # Every LLM step is one response of the server, with its id, finish reason and usage.
    llm_steps = [s for s in steps if s["kind"] == "llm"]
    sent = server.responses
    assert len(sent) == len(llm_steps) == 3
    for step, response in zip(llm_steps, sent, strict=True):
        assert step["model"] == "fake-gpt"
        assert step["response_id"] == response["id"]
        assert step["finish_reason_raw"] == response["choices"][0]["finish_reason"]
        assert step["input_tokens"] == response["usage"]["prompt_tokens"]
        assert step["output_tokens"] == response["usage"]["completion_tokens"]
        assert step["input_tokens"] > 0 and step["output_tokens"] > 0
    assert [s["finish_reason"] for s in llm_steps] == ["tool_call", "tool_call", "stop"]
    assert [s["finish_reason_raw"] for s in llm_steps] == ["tool_calls", "tool_calls", "stop"]
    # Each prompt is longer than the last: the conversation grows with the tool results.
    assert llm_steps[0]["input_tokens"] < llm_steps[1]["input_tokens"] < llm_steps[2]["input_tokens"]

    # The tool steps after an LLM step are the calls it asked for, linked by the model's call ids.
    for llm_step, response in zip(llm_steps[:2], sent, strict=False):
        following = [s for s in steps if s["step"] > llm_step["step"]]
        next_llm = next(s["step"] for s in following if s["kind"] == "llm")
        tools = [s for s in following if s["kind"] == "tool" and s["step"] < next_llm]
        asked = requested_calls(llm_step)
        assert asked == [
            (c["id"], c["function"]["name"]) for c in response["choices"][0]["message"]["tool_calls"]
        ]
        assert [(t["tool_call_id"], t["tool_name"]) for t in tools] == asked
        # ... and the next prompt carries each result back under the same id.
        next_input = json.loads(next(s for s in llm_steps if s["step"] == next_llm)["input"])
        answered = [p["id"] for m in next_input for p in m["parts"] if p["type"] == "tool_call_response"]
        assert [call_id for call_id, _ in asked] == answered[-len(asked) :]
    assert requested_calls(llm_steps[2]) == []

    # The tools did real work on the examples directory, and their results were recorded.
    by_tool = {s["tool_name"]: s for s in steps if s["kind"] == "tool"}
    assert json.loads(by_tool["list_files"]["input"]) == {"directory": "."}
    listing = sorted(p.name for p in EXAMPLES.iterdir() if p.is_file() and not p.name.startswith("."))
    assert "research_agent.py" in listing
    assert json.loads(by_tool["list_files"]["output"]) == listing
    agent_text = (EXAMPLES / "research_agent.py").read_text(encoding="utf-8")
    assert json.loads(by_tool["read_file"]["input"]) == {"path": "research_agent.py"}
    assert agent_text.startswith(by_tool["read_file"]["output"]) and by_tool["read_file"]["output"]
    counts = json.loads(by_tool["word_count"]["output"])
    assert counts == {
        "lines": len(agent_text.splitlines()),
        "words": len(agent_text.split()),
        "chars": len(agent_text),
    }

    # The final answer is the last LLM step's text, and the agent printed it.
    final = json.loads(llm_steps[2]["output"])[0]["parts"][0]["content"]
    assert f"{counts['words']} words" in final
    assert final == sent[2]["choices"][0]["message"]["content"]
    assert final in result.stdout


def test_truncating_model_ends_the_run_with_a_length_finish(store: Path) -> None:
    result = run_agent(store, "--model", "fake-truncating")  # the agent starts its own fake server

    run = only_run(store)
    assert run["state"] == "succeeded"
    llm_steps = [s for s in steps_of(store, run["run_id"]) if s["kind"] == "llm"]
    assert [s["finish_reason"] for s in llm_steps] == ["tool_call", "tool_call", "length"]
    assert llm_steps[-1]["finish_reason_raw"] == "length"
    assert llm_steps[-1]["model"] == "fake-truncating"
    assert llm_steps[-1]["output_tokens"] == fake.TRUNCATED_ANSWER_TOKENS
    assert "incomplete" in result.stdout and run["run_id"] in result.stdout


def test_a_failing_tool_call_is_an_error_step_and_the_model_is_told(configured: Path) -> None:
    agent = load_example("research_agent")
    calls = [
        {
            "id": "call_1",
            "type": "function",
            "function": {"name": "read_file", "arguments": '{"path": "../x"}'},
        },
        {"id": "call_2", "type": "function", "function": {"name": "delete_all", "arguments": "{}"}},
        {"id": "call_3", "type": "function", "function": {"name": "word_count", "arguments": "not json"}},
    ]
    with agenttrace.run("tool-errors") as run:
        replies = [agent.run_tool(call) for call in calls]

    assert [r["tool_call_id"] for r in replies] == ["call_1", "call_2", "call_3"]
    assert all(r["role"] == "tool" and r["content"].startswith("error: ") for r in replies)
    assert "outside" in replies[0]["content"] and "delete_all" in replies[1]["content"]
    steps = query(
        configured,
        "SELECT tool_call_id, tool_name, status_code, output FROM steps WHERE run_id = $r ORDER BY step",
        {"r": run.id},
    )
    assert [(s["tool_call_id"], s["tool_name"], s["status_code"]) for s in steps] == [
        ("call_1", "read_file", "Error"),
        ("call_2", "delete_all", "Error"),
        ("call_3", "word_count", "Error"),
    ]
    assert all(s["output"] is None for s in steps)


def post(url: str, data: bytes) -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, json.load(reply)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.load(exc)


def test_fake_server_rejects_malformed_requests_like_openai(server: Any) -> None:
    url = server.base_url + "/chat/completions"

    status, body = post(url, b'{"model": "fake-gpt", "messages": [')
    assert status == 400
    assert body["error"]["type"] == "invalid_request_error" and "JSON" in body["error"]["message"]

    status, body = post(url, json.dumps({"model": "fake-gpt"}).encode())
    assert status == 400 and body["error"]["param"] == "messages"

    status, body = post(server.base_url + "/nope", b"{}")
    assert status == 404 and "error" in body
    assert server.responses == []


def test_fake_server_answers_in_openai_shape(server: Any) -> None:
    messages = [{"role": "user", "content": "What is in here?"}]
    status, body = post(
        server.base_url + "/chat/completions",
        json.dumps({"model": "fake-gpt", "messages": messages}).encode(),
    )
    assert status == 200
    assert body["object"] == "chat.completion" and body["id"].startswith("chatcmpl-")
    choice = body["choices"][0]
    assert choice["finish_reason"] == "stop" and choice["message"]["role"] == "assistant"
    assert choice["message"]["content"] and "tool_calls" not in choice["message"]
    usage = body["usage"]
    assert usage["prompt_tokens"] == fake.prompt_tokens(messages, None)
    assert usage["completion_tokens"] == fake.count_tokens(choice["message"]["content"])
    assert usage["total_tokens"] == usage["prompt_tokens"] + usage["completion_tokens"]
