"""Verdicts on the real CLI coding agents (Claude Code, Codex, Gemini CLI from `.agents/`, run
offline against the fake model servers of tests/agents) under `agenttrace run`, with nothing but
the command: a clean session succeeds; a session whose answer was cut off fails; a session whose
shell command exited 2 and whose model then declared success fails. Each agent's own exit code
is 0 in the last case, and for Gemini in the cut-off case too: only agenttrace's verdict says so."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN, run_cli

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "agents"))
from cli_agents import run_cli_agent  # noqa: E402

CLIS = ("claude", "codex", "gemini")
EXPECTED = {
    "happy": ("succeeded", set()),
    "truncated": ("failed", {"completion_signal"}),
    "exit2": ("failed", {"unrecovered_errors"}),
}


def verdict_of(name: str, scenario: str, tmp_path: Path) -> dict[str, Any]:
    store, run_id = tmp_path / "store", f"{name}-{scenario}"
    wrapper = [str(BIN / "agenttrace"), "run", "--store", str(store), "--run-id", run_id, "--"]
    run = run_cli_agent(name, scenario, tmp_path / "work", None, home=tmp_path / "home", wrapper=wrapper)
    audited = run_cli("audit", run_id, "--json", "--store", str(store))
    assert audited.returncode in (0, 1), audited.stderr
    verdict = json.loads(audited.stdout)
    assert run.returncode == audited.returncode, (run.returncode, run.stderr[-3000:])
    return verdict


CASES = [(name, scenario) for name in CLIS for scenario in sorted(EXPECTED)]


@pytest.mark.parametrize(("name", "scenario"), CASES)
def test_the_verdict_on_a_real_cli_agent(name: str, scenario: str, tmp_path: Path) -> None:
    verdict = verdict_of(name, scenario, tmp_path)
    state, must_fail = EXPECTED[scenario]
    statuses = {g["name"]: g["status"] for g in verdict["gates"]}
    assert verdict["state"] == state, verdict["reasons"]
    failing = {g for g, s in statuses.items() if s == "fail"}
    if name == "codex" and scenario == "truncated":  # Codex reports no finish reason: it exits 1
        must_fail = {"exit_status"}
    assert failing >= must_fail, verdict["reasons"]
    if scenario == "happy":  # judged, not skipped
        assert statuses["completion_signal"] == "pass" and statuses["tool_calls_returned"] == "pass"
