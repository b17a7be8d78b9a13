"""Step N is the agent's Nth action, whatever language the agent is written in (DESIGN.md, "Steps";
issue 12): a 30-action agent under `agenttrace run`, in Python (the OpenAI SDK, its tools run as
commands), in Node (its own GenAI spans over OTLP) and in bash (the commands are the actions), and
`agenttrace step RUN 14` is its 14th action. Neither the agent's own process nor its top-level
agent span is counted."""

from __future__ import annotations

import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from conftest import REPO, run_cli

sys.path.insert(0, str(REPO / "tests" / "corpus"))
from scripted_model import ScriptedModel

ROUNDS = 15
"""Model calls that each ask for one command, then a final answer: 31 actions."""

PYTHON_AGENT = textwrap.dedent(
    """
    import json
    import subprocess

    from openai import OpenAI

    client = OpenAI()
    tools = [{"type": "function", "function": {"name": "run", "parameters": {"type": "object"}}}]
    messages = [{"role": "user", "content": "Touch the files."}]
    while True:
        message = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
        message = message.choices[0].message
        messages.append(message.model_dump(exclude_none=True))
        if not message.tool_calls:
            break
        for call in message.tool_calls:
            cmd = json.loads(call.function.arguments)["cmd"]
            out = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
            messages.append({"role": "tool", "tool_call_id": call.id, "content": out.stdout})
    print(message.content)
    """
)


def answers() -> list[dict[str, Any]]:
    calls = [
        {"tool_calls": [{"name": "run", "arguments": {"cmd": f"sleep 0.05; touch file-{n}"}}]}
        for n in range(1, ROUNDS + 1)
    ]
    return [*calls, {"text": "All files are there.", "finish_reason": "stop"}]


def run_agent(tmp_path: Path, command: list[str]) -> tuple[Path, ScriptedModel]:
    model = ScriptedModel(answers()).start()
    store = tmp_path / "store"
    env = {
        "OPENAI_BASE_URL": model.base_url + "/v1",
        "OPENAI_API_KEY": "sk-test",
        "MAX_TURNS": str(ROUNDS + 1),
    }
    try:
        result = run_cli("run", "--store", str(store), "--", *command, cwd=tmp_path, env=env, timeout=180)
    finally:
        model.shutdown()
        model.server_close()
    assert result.returncode == 0, result.stderr[-3000:]
    return store, model


def step(store: Path, n: int) -> dict[str, Any]:
    result = run_cli("step", "last", str(n), "--json", "--store", str(store))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def kinds(store: Path) -> list[str]:
    result = run_cli("query", "SELECT kind FROM steps ORDER BY step", "--json", "--store", str(store))
    return [row["kind"] for row in json.loads(result.stdout)]


@pytest.mark.parametrize("language", ["python", "node"])
def test_step_14_is_the_seventh_command_the_model_asked_for(tmp_path: Path, language: str) -> None:
    if language == "python":
        (tmp_path / "agent.py").write_text(PYTHON_AGENT)
        command = [sys.executable, "agent.py"]
    else:
        shutil.copy(REPO / "tests" / "corpus" / "node-otlp-clean" / "agent.js", tmp_path / "agent.js")
        command = ["node", "agent.js", "Touch the files."]
    store, model = run_agent(tmp_path, command)
    assert model.served == ROUNDS + 1
    # model call, its command, model call, ...: 31 actions, no process or agent span before them
    assert kinds(store) == ["llm", "tool" if language == "node" else "process"] * ROUNDS + ["llm"]
    fourteenth = step(store, 14)
    assert "touch file-7" in json.dumps(fourteenth["input"]), fourteenth
    thirteenth = step(store, 13)
    assert thirteenth["kind"] == "llm"
    assert fourteenth["decided_by"]["step"] == 13


def test_a_bash_agents_step_14_is_its_fourteenth_command(tmp_path: Path) -> None:
    lines = [f"sh -c ': command-{n}; sleep 0.05'" for n in range(1, 31)]
    (tmp_path / "agent.sh").write_text("#!/bin/bash\nset -e\n" + "\n".join(lines) + "\n")
    store = tmp_path / "store"
    result = run_cli("run", "--store", str(store), "--", "bash", "agent.sh", cwd=tmp_path, timeout=180)
    assert result.returncode == 0, result.stderr[-3000:]
    assert kinds(store) == ["process"] * 30
    fourteenth = step(store, 14)
    assert ": command-14;" in json.dumps(fourteenth["input"]), fourteenth
