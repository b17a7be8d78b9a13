"""`agenttrace step RUN N`: what happened at step N, and why."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from conftest import run_cli

import agenttrace


def thirty_steps(store: Path) -> dict[str, Any]:
    """15 turns: an LLM call whose output asks for a tool call by id, then that tool call."""
    ids: dict[str, Any] = {}
    with agenttrace.run("thirty") as run:
        ids["run"] = run.id
        for turn in range(15):
            call_id = f"call_{turn:02d}"
            output = [{"role": "assistant", "tool_calls": [
                {"id": call_id, "type": "function", "function": {"name": "grep", "arguments": "{}"}}
            ]}]  # fmt: skip
            ids[f"llm{turn}"] = agenttrace.llm("gpt-4o", output_messages=output, finish_reason="tool_calls")
            with agenttrace.tool_call("grep", call_id=call_id, arguments={"pattern": f"TODO-{turn}"}) as call:
                ids[f"tool{turn}"] = f"{call.span.get_span_context().span_id:016x}"
                if turn == 6:
                    subprocess.run(["sh", "-c", "exit 2"], check=False)
                call.set_result(f"{turn} matches")
    return ids


def step_json(store: Path, n: int) -> dict[str, Any]:
    result = run_cli("step", "last", str(n), "--json", "--store", str(store))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_step_14_is_the_tool_the_model_asked_for_at_step_13(configured: Path) -> None:
    ids = thirty_steps(configured)
    answer = step_json(configured, 14)
    assert {k: answer[k] for k in ("step", "of", "kind", "name", "tool_name", "tool_call_id", "status")} == {
        "step": 14,
        "of": 30,
        "kind": "tool",
        "name": "execute_tool grep",
        "tool_name": "grep",
        "tool_call_id": "call_06",
        "status": "ok",
    }
    assert answer["span_id"] == ids["tool6"]
    assert answer["input"] == {"pattern": "TODO-6"}
    assert answer["output"] == "6 matches"
    assert answer["decided_by"] == {
        "step": 13,
        "span_id": ids["llm6"],
        "reason": "its output asked for this tool call (id call_06)",
    }
    assert answer["next_step"] == {"step": 15, "kind": "llm", "name": "chat gpt-4o", "span_id": ids["llm7"]}
    assert answer["start_time"] and answer["end_time"]
    assert answer["errors"] == []


def test_an_llm_step_says_its_model_and_finish_reason(configured: Path) -> None:
    thirty_steps(configured)
    answer = step_json(configured, 13)
    assert (answer["kind"], answer["model"], answer["finish_reason"]) == ("llm", "gpt-4o", "tool_call")
    assert answer["output"][0]["parts"][0]["id"] == "call_06"
    assert answer["decided_by"] is None


def test_the_last_step_has_no_next_and_the_human_view_reads_as_an_answer(configured: Path) -> None:
    thirty_steps(configured)
    assert step_json(configured, 30)["next_step"] is None
    text = run_cli("step", "last", "14", "--store", str(configured)).stdout
    assert "Step 14 of 30" in text and "tool `grep`" in text
    assert "Why: step 13 asked for it: its output asked for this tool call (id call_06)." in text
    assert 'Input: {"pattern": "TODO-6"}' in text and "Output: 6 matches" in text
    assert "Next: step 15, llm `chat gpt-4o`." in text


def test_out_of_range_and_unknown_runs_are_errors(configured: Path) -> None:
    thirty_steps(configured)
    result = run_cli("step", "last", "31", "--store", str(configured))
    assert result.returncode == 2
    (line,) = result.stderr.strip().splitlines()
    assert line.endswith("has no step 31: its steps are 1 to 30")
    result = run_cli("step", "nope", "1", "--store", str(configured))
    assert result.returncode == 2
    assert result.stderr.strip().startswith("Error: no run matches 'nope'")


def test_processes_under_a_step_under_agenttrace_run(tmp_path: Path) -> None:
    """Under `agenttrace run`, the bootstrap records the tool's subprocess with its exit code."""
    agent = (
        "import subprocess, agenttrace\n"
        "with agenttrace.run('fixer'):\n"
        "    with agenttrace.tool_call('tests', call_id='call_1'):\n"
        "        subprocess.run(['sh', '-c', 'exit 2'])\n"
    )
    store = tmp_path / "store"
    run_cli("run", "--store", str(store), "--", sys.executable, "-c", agent, cwd=tmp_path)
    steps = json.loads(
        run_cli("query", "SELECT step, kind FROM steps", "--json", "--store", str(store)).stdout
    )
    (tool,) = [s["step"] for s in steps if s["kind"] == "tool"]
    answer = step_json(store, tool)
    processes = [c for c in answer["children"] if c["kind"] == "process"]
    assert [(p["command_line"], p["exit_code"]) for p in processes] == [("sh -c 'exit 2'", 2)]
    assert answer["errors"] == [
        {
            "span_id": processes[0]["span_id"],
            "name": "process sh",
            "message": "exit code 2",
            "exception_type": None,
        }
    ]
