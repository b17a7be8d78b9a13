"""The report's document for real runs of the research agent under `agenttrace run` with the demo's
objective (as `make demo` runs it): one that passes and one whose model cuts its answer short."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from conftest import BIN

from agenttrace.report.document import build_document
from agenttrace.report.limits import Limits
from agenttrace.store.layout import StoreLayout

REPO = Path(__file__).resolve().parents[1]
EXAMPLES = REPO / "examples"


def agenttrace(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}
    return subprocess.run(
        [str(BIN / "agenttrace"), *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120
    )


def demo_runs(root: Path) -> Path:
    """`make demo`'s two runs (a passing one, `good`, and `cut`, whose answer is cut short) in a
    store under `root`, each in a working directory holding a copy of the examples."""
    store = root / "store"
    for run_id, extra in (("good", []), ("cut", ["--model", "fake-truncating"])):
        work = root / run_id
        (work / "examples").mkdir(parents=True)
        for name in ("research_agent.py", "fake_model_server.py"):
            shutil.copy(EXAMPLES / name, work / "examples" / name)
        done = agenttrace(
            "run", "--store", str(store), "--run-id", run_id, "--objective", str(EXAMPLES / "objective.toml"),
            "--", sys.executable, "examples/research_agent.py", "--report", "demo-answer.md", *extra,
            cwd=work,
        )  # fmt: skip
        assert done.returncode == (0 if run_id == "good" else 1), done.stderr
    return store


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return demo_runs(tmp_path_factory.mktemp("report"))


@pytest.fixture(scope="module")
def good(store: Path) -> dict[str, Any]:
    return build_document(StoreLayout(store), "good")[0]


@pytest.fixture(scope="module")
def cut(store: Path) -> dict[str, Any]:
    return build_document(StoreLayout(store), "cut")[0]


def audit_json(store: Path, run: str) -> dict[str, Any]:
    return json.loads(agenttrace("audit", run, "--json", "--store", str(store), cwd=store.parent).stdout)


def test_the_verdict_is_the_audits(store: Path, good: dict[str, Any], cut: dict[str, Any]) -> None:
    for document, run in ((good, "good"), (cut, "cut")):
        audited = audit_json(store, run)
        verdict = document["verdict"]
        assert verdict["state"] == audited["state"] == document["run"]["state"]
        assert verdict["reasons"] == audited["reasons"]
        assert {g["name"]: g["status"] for g in verdict["gates"]} == {
            g["name"]: g["status"] for g in audited["gates"]
        }
    assert good["verdict"]["state"] == "succeeded" and good["verdict"]["reasons"] == []
    assert cut["verdict"]["state"] == "failed"
    failed = [g for g in cut["verdict"]["gates"] if g["status"] == "fail"]
    assert failed[0]["name"] in {"completion_signal", "criteria"}  # failed gates first
    signal = next(g for g in failed if g["name"] == "completion_signal")
    assert signal["violations"][0]["span_id"] and "cut short" in signal["violations"][0]["reason"]


def test_steps_are_as_agenttrace_step_gives_them(store: Path, cut: dict[str, Any]) -> None:
    items = cut["steps"]["items"]
    assert cut["steps"]["of"] == len(items) > 3
    for n in (3, len(items)):
        answer = json.loads(
            agenttrace("step", "cut", str(n), "--json", "--store", str(store), cwd=store.parent).stdout
        )
        step = items[n - 1]
        assert answer["of"] == cut["steps"]["of"]
        assert (step["step"], step["kind"], step["name"], step["span_id"], step["status"]) == (
            answer["step"], answer["kind"], answer["name"], answer["span_id"], answer["status"],
        )  # fmt: skip
        for key in ("input", "output"):
            assert (step[key] or {}).get("value") == answer[key]
        decided = answer["decided_by"]
        assert (step["decided_by"] or {}).get("step") == (decided or {}).get("step")
    tool = next(s for s in items if s["kind"] == "tool")
    assert "asked for this tool call" in tool["decided_by"]["reason"]


def test_timeline_tree_claims_objective_tokens_environment(good: dict[str, Any], cut: dict[str, Any]) -> None:
    bars = cut["timeline"]["bars"]
    assert len([b for b in bars if b["kind"] == "step"]) == cut["steps"]["of"]
    processes = cut["processes"]["items"]
    assert len([b for b in bars if b["kind"] == "process"]) == cut["processes"]["of"] == len(processes) >= 1
    assert any(b["kind"] == "verification" for b in bars)
    assert all(0 <= b["start"] <= b["end"] <= cut["timeline"]["duration"] + 1 for b in bars)
    assert processes[0]["parent"] is None and processes[0]["exit_code"] == 0
    assert all(p["parent"] == processes[0]["span_id"] for p in processes[1:])

    (claim,) = good["claims"]["items"]
    assert claim["status"] == "ok" and claim["evidence"] and all(e["resolved"] for e in claim["evidence"])

    criteria = {c["id"]: c["status"] for c in cut["objective"]["criteria"]}
    assert criteria == {"answers-the-question": "fail", "the-agent-still-compiles": "pass"}
    assert {c["status"] for c in good["objective"]["criteria"]} == {"pass"}
    assert [d["status"] for d in good["objective"]["deliverables"]] == ["pass"]

    llm = [s for s in good["steps"]["items"] if s["kind"] == "llm"]
    assert [t["step"] for t in good["tokens"]["steps"]] == [s["step"] for s in llm]
    total = good["tokens"]["total"]
    assert total["tokens"] == sum((s["input_tokens"] or 0) + (s["output_tokens"] or 0) for s in llm) > 0

    env = good["environment"]
    assert env["argv"][1:] == ["examples/research_agent.py", "--report", "demo-answer.md"]
    assert env["attributes"]["process.working_directory"].endswith("good")
    assert "agenttrace_audit" in env["packages"]


def test_the_limits_cut_steps_texts_bars_and_the_tree(store: Path, cut: dict[str, Any]) -> None:
    small = Limits(steps=3, text_chars=20, bars=6, tree_nodes=1)
    document, _ = build_document(StoreLayout(store), "cut", small)
    assert document["steps"]["of"] == cut["steps"]["of"] and len(document["steps"]["items"]) == 3
    texts = [s[k] for s in document["steps"]["items"] for k in ("input", "output") if s[k]]
    assert any(t["cut"] for t in texts)
    assert all(len(t["value"]) <= 20 for t in texts if t["cut"])
    bars = document["timeline"]["bars"]
    named = {v["span_id"] for g in cut["verdict"]["gates"] for v in g["violations"] if v["span_id"]}
    assert len(bars) <= 6 + len(named)
    merged = [b for b in bars if b["kind"] == "aggregate"]
    assert merged and all(b["count"] >= 1 and str(b["count"]) in b["label"] for b in merged)
    assert sum(b.get("count", 1) for b in bars) == len(cut["timeline"]["bars"])
    assert len(document["processes"]["items"]) == 1
    applied = document["limits"]["applied"]
    assert applied["steps"] and applied["bars"] and applied["text"] and applied["tree_nodes"]
    assert document["limits"]["steps"] == 3 and document["limits"]["bars"] == 6
