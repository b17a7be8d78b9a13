"""notebooks/audit.ipynb, executed end to end with nbclient against a store this test makes."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from nbclient import NotebookClient

import agenttrace


def outputs(cell: nbformat.NotebookNode) -> tuple[str, set[str]]:
    text, kinds = "", set()
    for output in cell.get("outputs", []):
        if output.get("output_type") == "stream":
            text += output.get("text", "")
        for mime in output.get("data", {}):
            kinds.add(mime)
    return text, kinds


def test_the_audit_notebook_runs_and_shows_states_timeline_reasons_and_tokens(
    configured: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with agenttrace.run("done") as ok:
        agenttrace.llm("gpt-4o", finish_reason="stop", input_tokens=100, output_tokens=20)
    with agenttrace.run("cut-off") as cut:
        with agenttrace.tool_call("search", call_id="call_1", arguments={"q": "x"}) as call:
            call.set_result("found")
        agenttrace.llm("gpt-4o", finish_reason="length", input_tokens=300, output_tokens=4096)
    monkeypatch.setenv("AGENTTRACE_STORE", str(configured))
    notebook = nbformat.read(REPO / "notebooks" / "audit.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(configured)}}
    ).execute()
    code = [c for c in notebook.cells if c.cell_type == "code"]
    listing, _ = outputs(code[0])
    assert "2 run(s)" in listing
    assert f"{ok.id}" in listing and f"{cut.id}" in listing
    assert "done" in listing and "cut-off" in listing
    timeline, kinds = outputs(code[1])
    assert "image/png" in kinds, "the Gantt chart is drawn"
    assert "timeline of 3 spans" in timeline  # the latest run: its root, the tool call, the LLM call
    reasons, _ = outputs(code[2])
    assert f"{cut.id} failed:" in reasons
    assert "completion_signal: the last LLM response was cut short (finish reason `length`)" in reasons
    assert "failed gates across runs: {'completion_signal': 1}" in reasons
    tokens, _ = outputs(code[3])
    assert "tokens: 300 in, 4096 out, over 2 steps" in tokens
