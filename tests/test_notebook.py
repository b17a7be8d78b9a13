"""notebooks/audit.ipynb, executed end to end with nbclient against a store this test makes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from conftest import REPO
from fakes.nvml.state import make_state
from nbclient import NotebookClient

import agenttrace

FAKES = Path(__file__).parent / "fakes" / "nvml"


def execute(store: Path) -> list[nbformat.NotebookNode]:
    """Run the notebook over `store` (AGENTTRACE_STORE set by the caller); its code cells."""
    notebook = nbformat.read(REPO / "notebooks" / "audit.ipynb", as_version=4)
    NotebookClient(
        notebook, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(store)}}
    ).execute()
    return [c for c in notebook.cells if c.cell_type == "code"]


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
    code = execute(configured)
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
    gpus, kinds = outputs(code[4])
    assert gpus == f"no GPU samples in run {cut.id}\n" and "image/png" not in kinds


def test_the_notebook_plots_each_gpu_with_a_foreign_process_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A real `agenttrace run --gpu 0` under the fake NVML (tests/fakes/nvml): the agent holds 1 GiB
    on GPU 0 for 3 s; meanwhile a process outside the run holds 2 GiB there for 1 s."""
    state = make_state(tmp_path, n_devices=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}
    env |= {"FAKE_NVML_STATE": str(state), "AGENTTRACE_GPU_LOCK_DIR": str(tmp_path / "locks")}
    store, cuda = tmp_path / "store", [sys.executable, str(FAKES / "fake_cuda.py"), "--device", "0"]
    run = subprocess.Popen(
        [sys.executable, str(FAKES / "agenttrace_with_fake_nvml.py"), "run", "--store", str(store),
         "--gpu", "0", "--gpu-interval", "200ms", "--", *cuda, "--mem", "1GiB", "--seconds", "3"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 30
    while not any((state / "procs").glob("*.json")) and time.monotonic() < deadline:
        time.sleep(0.05)
    uuid = json.loads((state / "devices.json").read_text())[0]["uuid"]
    intruder = subprocess.Popen(
        [*cuda, "--mem", "2GiB", "--seconds", "1"], env=env | {"CUDA_VISIBLE_DEVICES": uuid},
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    intruder.wait(30)
    _, err = run.communicate(timeout=90)
    assert run.returncode == 1, err  # gpu_guard failed it: the intruder
    monkeypatch.setenv("AGENTTRACE_STORE", str(store))
    gpus, kinds = outputs(execute(store)[4])
    assert "image/png" in kinds, "the GPU plot is drawn"
    lines = gpus.splitlines()
    assert lines[0].startswith(f"GPU 0 ({uuid}) leased: "), gpus
    assert "memory peak 3.5 GiB" in lines[0], gpus  # 1 + 2 GiB + the driver's 0.5
    assert lines[1].startswith(f"  foreign process {intruder.pid} `"), gpus
    assert "fake_cuda.py --device 0 --mem 2GiB --seconds 1`" in lines[1] and lines[1].endswith("peak 2.0 GiB")
    assert lines[2] == f"  legend: device memory used, the run's processes, foreign pid {intruder.pid}"
    assert lines[3].startswith("GPU 1 (") and "leased" not in lines[3], gpus  # sampled, not leased
    assert lines[4] == "  legend: device memory used, the run's processes"
