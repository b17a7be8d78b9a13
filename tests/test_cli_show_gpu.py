"""`agenttrace show` and `agenttrace step` over real `agenttrace run --gpu` runs: the GPU use of the
run's processes, the lease, the intruders, and the devices under a step.

The real CLI runs under the fake NVML (tests/fakes/nvml, as in test_cli_run_gpu.py); the agent is a
real Python process using the agenttrace API, whose tool step runs `fake_cuda.py` (a process that
NVML lists on a device with the memory and utilization it asks for); the intruder is a second
`fake_cuda.py` started by the test, outside the run, on the leased device.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import run_cli
from fakes.nvml.state import DRIVER_RESERVE, make_state

from agenttrace.analysis import Database
from agenttrace.analysis.derived import DerivedDatabase
from agenttrace.analysis.gpu_use import run_gpu_use
from agenttrace.analysis.step import explain_step
from agenttrace.store.layout import StoreLayout

FAKES = Path(__file__).parent / "fakes" / "nvml"
LAUNCHER = FAKES / "agenttrace_with_fake_nvml.py"
GIB = 1 << 30

AGENT = """\
import subprocess, sys, agenttrace
CUDA = [sys.executable, {cuda!r}]
with agenttrace.run("trainer"):
    agenttrace.llm("gpt-4o", finish_reason="tool_calls")
    with agenttrace.tool_call("train", call_id="call_1"):
        subprocess.run(CUDA + {args!r}, check=True)
    agenttrace.llm("gpt-4o", finish_reason="stop")
"""
"""Three steps: an LLM call, the tool `train` (step 2) whose child process holds a GPU, an LLM call."""


def host_env(tmp_path: Path) -> dict[str, str]:
    """A host with 2 fake GPUs and a lock dir of its own; nothing of the developer's AGENTTRACE_* or
    OTEL_* settings."""
    state = make_state(tmp_path, n_devices=2)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AGENTTRACE_", "OTEL_", "TRACEPARENT"))}
    return env | {"FAKE_NVML_STATE": str(state), "AGENTTRACE_GPU_LOCK_DIR": str(tmp_path / "locks")}


def start_run(env: dict[str, str], store: Path, agent: Path, *flags: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(LAUNCHER), "run", "--store", str(store), "--gpu-interval", "200ms", *flags,
         "--", sys.executable, str(agent)],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=agent.parent,
    )  # fmt: skip


def write_agent(tmp_path: Path, *args: str) -> Path:
    agent = tmp_path / "agent.py"
    agent.write_text(AGENT.format(cuda=str(FAKES / "fake_cuda.py"), args=list(args)))
    return agent


def devices(env: dict[str, str]) -> list[dict[str, Any]]:
    return json.loads(Path(env["FAKE_NVML_STATE"], "devices.json").read_text())


@pytest.fixture(scope="module")
def intruded(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """One `agenttrace run --gpu 0` whose step 2 holds 1 GiB at 60% on GPU 0 for 4 s; while it does,
    a process outside the run takes 2 GiB at 30% on GPU 0 for 1 s."""
    tmp_path = tmp_path_factory.mktemp("intruded")
    env = host_env(tmp_path)
    store = tmp_path / "store"
    agent = write_agent(tmp_path, "--device", "0", "--mem", "1GiB", "--util", "60", "--seconds", "4")
    run = start_run(env, store, agent, "--gpu", "0")
    procs = Path(env["FAKE_NVML_STATE"], "procs")
    deadline = time.monotonic() + 30
    while not any(procs.glob("*.json")) and time.monotonic() < deadline:  # the agent's CUDA process is on
        time.sleep(0.05)
    uuid = devices(env)[0]["uuid"]
    intruder = subprocess.Popen(
        [sys.executable, str(FAKES / "fake_cuda.py"), "--device", "0", "--mem", "2GiB", "--util", "30",
         "--seconds", "1"],
        env=env | {"CUDA_VISIBLE_DEVICES": uuid}, stdout=subprocess.DEVNULL,
    )  # fmt: skip
    intruder.wait(30)
    _, err = run.communicate(timeout=90)
    assert run.returncode == 1, err  # gpu_guard failed it
    return {"env": env, "store": store, "uuid": uuid, "intruder": intruder.pid}


def show(store: Path) -> str:
    result = run_cli("show", "last", "--store", str(store))
    assert result.returncode == 0, result.stderr
    return result.stdout


def step_json(store: Path, n: int) -> dict[str, Any]:
    result = run_cli("step", "last", str(n), "--json", "--store", str(store))
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_show_marks_the_process_on_the_gpu_and_shows_the_lease(intruded: dict[str, Any]) -> None:
    text = show(intruded["store"])
    (cuda,) = [line for line in text.splitlines() if "process " in line and "GPU" in line]
    assert "process python  " in cuda and cuda.rstrip().endswith("exit 0  GPU 0: 1.0 GiB peak"), text
    lease = text[text.index("GPU lease: ") :]
    assert lease.startswith(f"GPU lease: GPU 0 ({intruded['uuid']}) · waited 0.0 s · held "), text
    assert "GPU 0 NVIDIA H200: utilization max 90% (avg " in lease, text  # 60% + the intruder's 30%
    assert "memory peak 3.5 GiB of 140.4 GiB" in lease, text  # 1 + 2 GiB + the driver's 0.5
    assert "LOST" not in lease and "never" not in lease


def test_show_names_the_intruder(intruded: dict[str, Any]) -> None:
    text = show(intruded["store"])
    header = "Intruders on leased GPUs (1):"
    assert header in text, text
    (line,) = [x for x in text.splitlines() if x.startswith(f"  - pid {intruded['intruder']} ")]
    assert "fake_cuda.py --device 0 --mem 2GiB --util 30 --seconds 1`" in line, line
    assert f"on GPU 0 ({intruded['uuid']}) from " in line and line.endswith(", 2.0 GiB peak"), line
    assert text.index(header) < text.index(line)


def test_step_shows_its_child_process_gpu_use_and_the_devices(intruded: dict[str, Any]) -> None:
    answer = step_json(intruded["store"], 2)
    children = answer["children"]
    (child,) = [c for c in children if c["kind"] == "process" and "fake_cuda" in (c["command_line"] or "")]
    (use,) = answer["gpu"]["processes"]
    assert {k: use[k] for k in ("span_id", "pid", "device", "uuid", "leased", "peak_memory")} == {
        "span_id": child["span_id"], "pid": child["pid"], "device": 0, "uuid": intruded["uuid"],
        "leased": True, "peak_memory": GIB,
    }  # fmt: skip
    assert use["first_seen"] <= use["last_seen"] and use["samples"] >= 10  # 4 s at 200 ms
    (device,) = answer["gpu"]["devices"]
    assert {k: device[k] for k in ("device", "uuid", "name", "leased", "utilization_max")} == {
        "device": 0, "uuid": intruded["uuid"], "name": "NVIDIA H200", "leased": True, "utilization_max": 0.9,
    }  # fmt: skip
    assert 0 <= device["utilization_min"] <= device["utilization_avg"] <= 0.9
    assert device["memory_used_max"] == 3 * GIB + DRIVER_RESERVE
    assert device["samples"] >= 10
    for n in (1, 3):  # the LLM steps ran no process; no GPU is used during them
        assert step_json(intruded["store"], n)["gpu"]["processes"] == []

    text = run_cli("step", "last", "2", "--store", str(intruded["store"])).stdout
    (line,) = [x for x in text.splitlines() if "fake_cuda.py" in x]
    assert "(exit 0)  GPU 0: 1.0 GiB peak from " in line, text
    assert "GPU during this step:\n  - GPU 0 NVIDIA H200: utilization min " in text, text
    assert "max 90%; memory up to 3.5 GiB of 140.4 GiB (" in text, text


def test_gpu_answers_from_derived_tables_equal_the_views(intruded: dict[str, Any]) -> None:
    layout = StoreLayout(intruded["store"])
    with Database(layout) as db:
        (run_id,) = [r["run_id"] for r in db.records("SELECT run_id FROM runs")]
    fast = DerivedDatabase.open(layout, run_id)
    assert fast is not None, "the sealed run has its derived tables"
    with fast, Database(layout, runs=[run_id]) as views:
        assert run_gpu_use(fast, run_id) == run_gpu_use(views, run_id)
        assert run_gpu_use(fast, run_id)["intruders"]
        for n in (1, 2, 3):
            assert explain_step(fast, run_id, n) == explain_step(views, run_id, n)


def test_a_process_on_a_gpu_the_run_did_not_lease_is_marked(tmp_path: Path) -> None:
    env = host_env(tmp_path)
    store = tmp_path / "store"
    agent = write_agent(tmp_path, "--device", "0", "--mem", "512MiB", "--seconds", "1")
    run = start_run(env, store, agent)  # no --gpu: every device is visible, none is leased
    _, err = run.communicate(timeout=90)
    assert run.returncode == 1, err
    text = show(store)
    (cuda,) = [line for line in text.splitlines() if "process " in line and "GPU" in line]
    assert "process python  " in cuda, text
    assert cuda.rstrip().endswith("exit 0  GPU 0 (not leased): 512.0 MiB peak"), text
    assert "GPU lease: none, yet the run's processes used a GPU (agenttrace run --gpu)" in text
    assert "Intruders" not in text
    (device,) = step_json(store, 2)["gpu"]["devices"]
    assert (device["device"], device["leased"], device["utilization_max"]) == (0, False, 0.5)


def test_runs_without_gpu_use_show_nothing_new(tmp_path: Path) -> None:
    env = host_env(tmp_path)
    sampled = tmp_path / "sampled"  # a GPU host, no lease, no process on a GPU
    agent = tmp_path / "agent.py"
    agent.write_text("import agenttrace\nwith agenttrace.run('cpu'):\n    agenttrace.llm('gpt-4o')\n")
    run = start_run(env, sampled, agent)
    _, err = run.communicate(timeout=90)
    assert run.returncode == 0, err
    plain = tmp_path / "plain"  # no NVML at all
    result = run_cli("run", "--store", str(plain), "--", sys.executable, str(agent), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for store in (sampled, plain):
        text = show(store)
        assert "GPU" not in text, text
        answer = step_json(store, 1)
        assert answer["gpu"] == (None if store == plain else {"processes": [], "devices": []})
        assert "GPU" not in run_cli("step", "last", "1", "--store", str(store)).stdout
