"""`agenttrace diff RUN_A RUN_B` over real runs recorded by `agenttrace run`: the research agent
against the fake model server (a passing run and one whose model cuts its answer short), and
shell agents (the same script twice; a script that runs another command and writes other files)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN

EXAMPLES = Path(__file__).resolve().parents[1] / "examples"

SAME = "echo one > out.txt\necho kept > gone.txt\nsleep 0.3\n"
"""A shell agent: its one command lasts long enough for a /proc poll to see it."""
OTHER = "echo two > out.txt\necho new > extra.txt\nsleep 0.3\nsleep 0.31\nexit 3\n"
"""The same agent changed: another command, other files, and a failing exit."""

KEYS = {"run_a", "run_b", "first_divergence", "steps", "tools", "processes", "files", "deltas", "gates"}


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}


def agenttrace(*args: str, cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "agenttrace"), *args],
        capture_output=True,
        text=True,
        env=_env(),
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store holding five real runs: `good` and `truncated` (the research agent), `same1` and
    `same2` (one shell script twice), `other` (the changed script)."""
    root = tmp_path_factory.mktemp("diff")
    store = root / "store"
    agent = [sys.executable, str(EXAMPLES / "research_agent.py")]
    for run_id, command in (("good", agent), ("truncated", [*agent, "--model", "fake-truncating"])):
        work = root / run_id
        work.mkdir()
        done = agenttrace("run", "--store", str(store), "--run-id", run_id, "--", *command, cwd=work)
        assert done.returncode == (0 if run_id == "good" else 1), done.stderr
    for run_id, script in (("same1", SAME), ("same2", SAME), ("other", OTHER)):
        work = root / run_id
        work.mkdir()
        (work / "agent.sh").write_text(script)
        done = agenttrace("run", "--store", str(store), "--run-id", run_id, "--", "sh", "agent.sh", cwd=work)
        assert done.returncode == (1 if run_id == "other" else 0), done.stderr
    return store


def diff(store: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return agenttrace("diff", "--store", str(store), *args, cwd=store.parent)


def diff_json(store: Path, a: str, b: str) -> tuple[int, dict[str, Any]]:
    done = diff(store, a, b, "--json")
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def test_a_passing_and_a_truncated_run_part_at_the_first_llm_step_and_differ_in_completion_signal(
    runs: Path,
) -> None:
    code, answer = diff_json(runs, "good", "truncated")
    assert code == 1
    assert set(answer) == KEYS
    assert (answer["run_a"]["state"], answer["run_b"]["state"]) == ("succeeded", "failed")
    assert answer["run_a"]["verdict"] == answer["run_b"]["verdict"] == "recorded"
    first = answer["first_divergence"]
    assert (first["step_a"], first["step_b"], first["kind"]) == (2, 2, "llm")
    assert first["differences"] == [{"field": "model", "path": "", "a": "fake-gpt", "b": "fake-truncating"}]
    # the same calls in the same order: every step pairs, the tool calls are the same (the tool-call
    # ids the model made up differ; they are volatile), and the last answer was cut short
    pairs = answer["steps"]
    assert [(p["step_a"], p["step_b"], p["kind"]) for p in pairs] == [
        (n, n, k) for n, k in enumerate(["other", "llm", "tool", "llm", "tool", "tool", "llm"], start=1)
    ]
    assert [p["same"] for p in pairs if p["kind"] != "llm"] == [True] * 4
    assert answer["tools"] == []
    last = {d["field"]: d for d in pairs[-1]["differences"]}
    assert (last["finish_reason"]["a"], last["finish_reason"]["b"]) == ("stop", "length")
    assert "output" in last
    gates = {g["name"]: g for g in answer["gates"]}
    assert [n for n, g in gates.items() if not g["same"]] == ["completion_signal"]
    assert (gates["completion_signal"]["a"], gates["completion_signal"]["b"]) == ("pass", "fail")
    assert any(r.startswith("completion_signal:") for r in answer["run_b"]["reasons"])
    deltas = answer["deltas"]
    assert deltas["output_tokens"]["delta"] < 0 and deltas["input_tokens"]["delta"] == 0
    assert deltas["steps"] == {"a": 7, "b": 7, "delta": 0}
    (root,) = [p for p in answer["processes"] if "research_agent.py" in (p["a"] or p["b"])["command_line"]]
    assert root["differences"] == ["command_line"]
    assert root["b"]["command_line"].endswith("--model fake-truncating")


def test_the_terminal_view_names_the_divergence_the_steps_and_the_gates_that_differ(runs: Path) -> None:
    done = diff(runs, "good", "truncated")
    assert done.returncode == 1, done.stderr
    out = done.stdout
    assert "first divergence: step 2 (llm): model: fake-gpt → fake-truncating" in out
    assert "finish reason: stop → length" in out
    assert "Gates: 1 differ (completion_signal)" in out
    (line,) = [x for x in out.splitlines() if x.startswith("completion_signal")]
    assert line.split() == ["completion_signal", "pass", "fail", "differs"]
    assert "Deltas (B - A)" in out and "output tokens" in out


def test_two_runs_of_the_same_shell_agent_do_not_diverge(runs: Path) -> None:
    code, answer = diff_json(runs, "same1", "same2")
    assert code == 0
    assert answer["first_divergence"] is None
    assert answer["steps"] and all(p["same"] and not p["differences"] for p in answer["steps"])
    assert [p["kind"] for p in answer["steps"]] == ["process"]
    assert answer["files"] == [] and answer["tools"] == []
    assert all(g["same"] for g in answer["gates"])
    done = diff(runs, "same1", "same2")
    assert done.returncode == 0
    assert "no divergence in steps" in done.stdout


def test_a_shell_agent_that_runs_another_command_shows_the_process_and_file_differences(runs: Path) -> None:
    code, answer = diff_json(runs, "same1", "other")
    assert code == 1
    first = answer["first_divergence"]
    assert (first["step_a"], first["step_b"], first["kind"]) == (None, 2, "process")
    assert first["what"] == "only in run B: process `sleep 0.31` (step 2)"
    assert [(p["step_a"], p["step_b"], p["same"]) for p in answer["steps"]] == [
        (1, 1, True),
        (None, 2, False),
    ]
    processes = {(p["a"] or {}).get("command_line"): p for p in answer["processes"]}
    assert processes["sh agent.sh"]["differences"] == ["exit_code"]
    assert (processes["sh agent.sh"]["a"]["exit_code"], processes["sh agent.sh"]["b"]["exit_code"]) == (0, 3)
    assert processes[None]["b"]["command_line"] == "sleep 0.31"
    files = {f["path"]: f for f in answer["files"]}
    assert {p: f["change"] for p, f in files.items()} == {
        "extra.txt": "added",
        "gone.txt": "removed",
        "out.txt": "changed",
    }
    assert files["out.txt"]["a"]["sha256"] != files["out.txt"]["b"]["sha256"]
    gates = [g["name"] for g in answer["gates"] if not g["same"]]
    assert gates == ["exit_status"]
    out = diff(runs, "same1", "other").stdout
    assert "first divergence: step 2 (process): only in run B: process `sleep 0.31` (step 2)" in out
    for text in ("Processes that differ", "sleep 0.31", "Files written that differ", "extra.txt", "gone.txt"):
        assert text in out


def test_runs_are_named_by_prefix_or_last(runs: Path) -> None:
    done = diff(runs, "same1", "last", "--json")
    assert done.returncode == 1
    assert json.loads(done.stdout)["run_b"]["run_id"] == "other"
    _, answer = diff_json(runs, "go", "tr")
    assert (answer["run_a"]["run_id"], answer["run_b"]["run_id"]) == ("good", "truncated")


@pytest.mark.parametrize(
    "args", [("good", "nosuchrun"), ("nosuchrun", "good"), ("same", "good")], ids=["b", "a", "ambiguous"]
)
def test_an_unknown_or_ambiguous_run_is_one_error_line_and_exit_2(runs: Path, args: tuple[str, str]) -> None:
    done = diff(runs, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), done.stderr


def test_diff_is_in_the_help(runs: Path) -> None:
    done = agenttrace("diff", "--help", cwd=runs.parent)
    assert done.returncode == 0
    for key in sorted(KEYS):
        assert key in done.stdout
