"""`agenttrace gpus [--json]`: devices, leases and current users, through the real CLI.

The CLI runs under the fake NVML (tests/fakes/nvml: the real pynvml over a stand-in for
libnvidia-ml.so.1); leases are taken by real processes (`agenttrace run --gpu`, or a process calling
`acquire`), CUDA users are `fake_cuda.py` processes. Every test has a lock dir of its own.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import run_cli
from fakes.nvml.state import DRIVER_RESERVE, MiB, make_state, read_devices

FAKES = Path(__file__).parent / "fakes" / "nvml"
LAUNCHER = FAKES / "agenttrace_with_fake_nvml.py"
CUDA = FAKES / "fake_cuda.py"


@pytest.fixture
def gpu_host(tmp_path: Path) -> dict[str, str]:
    """A host with 3 fake GPUs and a lock dir of its own."""
    state = make_state(tmp_path, n_devices=3)
    return {"FAKE_NVML_STATE": str(state), "AGENTTRACE_GPU_LOCK_DIR": str(tmp_path / "locks")}


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[str]]]:
    started: list[subprocess.Popen[str]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()


def gpus(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """The real `agenttrace gpus ARGS...` with the fake NVML in place of the driver."""
    return subprocess.run(
        [sys.executable, str(LAUNCHER), "gpus", *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        timeout=60,
        check=False,
    )


def gpus_json(env: dict[str, str]) -> list[dict]:
    result = gpus(env, "--json")
    assert result.returncode == 0, result.stderr
    devices: list[dict] = json.loads(result.stdout)["devices"]
    return devices


def start_cuda(
    env: dict[str, str], started: list[subprocess.Popen[str]], *args: str, **extra_env: str
) -> subprocess.Popen[str]:
    """A fake CUDA process, returned once NVML lists it (its `fake_cuda: ready` line)."""
    process = subprocess.Popen(
        [sys.executable, str(CUDA), *args, "--seconds", "120"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **env, **extra_env},
    )
    started.append(process)
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line.startswith("fake_cuda: ready"), (line, process.communicate())
    return process


def test_every_device_is_listed_free(gpu_host: dict[str, str]) -> None:
    result = gpus(gpu_host)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["GPU", "UUID", "NAME", "MEMORY", "UTIL", "LEASE"]
    devices = read_devices(Path(gpu_host["FAKE_NVML_STATE"]))
    for index, device in enumerate(devices):
        (row,) = [line for line in lines if device["uuid"] in line]
        assert row.split()[0] == str(index)
        assert "NVIDIA H200" in row and "0%" in row and row.endswith("free")
        assert "512.0 MiB / 140.4 GiB" in row  # the driver's reserve, of an H200's total
    assert "No processes on any GPU." in lines


def test_json_has_the_documented_shape(gpu_host: dict[str, str]) -> None:
    devices = gpus_json(gpu_host)
    known = read_devices(Path(gpu_host["FAKE_NVML_STATE"]))
    assert [d["index"] for d in devices] == [0, 1, 2]
    for device, fake in zip(devices, known, strict=True):
        assert set(device) == {
            "index",
            "uuid",
            "name",
            "memory_used",
            "memory_total",
            "utilization",
            "lease",
            "processes",
            "error",
        }
        assert (device["uuid"], device["name"], device["memory_total"]) == (
            fake["uuid"],
            fake["name"],
            fake["memory_total"],
        )
        assert device["memory_used"] == DRIVER_RESERVE
        assert device["utilization"] == 0
        assert device["lease"] is None and device["processes"] == [] and device["error"] is None


def test_a_run_holding_a_lease_is_shown_with_its_run_id_and_its_cuda_process(
    tmp_path: Path, gpu_host: dict[str, str], processes: list[subprocess.Popen[str]]
) -> None:
    """`agenttrace run --gpu 1` holds GPU 1; its agent (a fake CUDA process on its logical device
    0, which is GPU 1) is listed on GPU 1 with its memory."""
    run = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "run", "--store", str(tmp_path / "store"), "--run-id",
         "run-holding-one", "--gpu", "1", "--", sys.executable, str(CUDA), "--device", "0", "--mem",
         "1GiB", "--util", "40", "--seconds", "120"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env={**os.environ, **gpu_host},
    )  # fmt: skip
    processes.append(run)
    assert run.stdout is not None
    line = run.stdout.readline()  # the agent's stdout comes through the run's
    assert line.startswith("fake_cuda: ready"), (line, run.communicate())
    agent_pid = int(line.split("pid=")[1].split()[0])

    devices = gpus_json(gpu_host)
    held = devices[1]
    assert held["lease"] is not None
    assert held["lease"]["run_id"] == "run-holding-one"
    assert held["lease"]["pid"] == run.pid  # the supervisor, not the agent
    assert held["lease"]["devices"] == [held["uuid"]]
    assert held["lease"]["since"].endswith("Z")
    assert held["processes"] == [
        {"pid": agent_pid, "memory": 1024 * MiB, "command_line": held["processes"][0]["command_line"]}
    ]
    assert "fake_cuda.py --device 0 --mem 1GiB" in held["processes"][0]["command_line"]
    assert held["memory_used"] == 1024 * MiB + DRIVER_RESERVE
    assert held["utilization"] == pytest.approx(0.4)
    assert devices[0]["lease"] is None and devices[2]["lease"] is None
    assert devices[0]["processes"] == [] and devices[2]["processes"] == []

    table = gpus(gpu_host)
    assert table.returncode == 0, table.stderr
    (row,) = [x for x in table.stdout.splitlines() if held["uuid"] in x]
    assert f"run run-holding-one (agenttrace pid {run.pid}, since " in row
    assert "40%" in row and "1.5 GiB / 140.4 GiB" in row
    (user,) = [x for x in table.stdout.splitlines() if x.split()[:2] == ["1", str(agent_pid)]]
    assert "1.0 GiB" in user and "fake_cuda.py --device 0 --mem 1GiB" in user

    run.send_signal(signal.SIGINT)  # the run ends; its lease goes with it
    run.communicate(timeout=60)
    assert gpus_json(gpu_host)[1]["lease"] is None


def test_a_process_outside_any_run_is_listed_on_its_device(
    gpu_host: dict[str, str], processes: list[subprocess.Popen[str]]
) -> None:
    two = start_cuda(gpu_host, processes, "--device", "0", "--mem", "512MiB", CUDA_VISIBLE_DEVICES="2")
    also = start_cuda(gpu_host, processes, "--device", "0", "--mem", "256MiB", CUDA_VISIBLE_DEVICES="2")
    devices = gpus_json(gpu_host)
    assert [(p["pid"], p["memory"]) for p in devices[2]["processes"]] == sorted(
        [(two.pid, 512 * MiB), (also.pid, 256 * MiB)]
    )
    assert devices[2]["memory_used"] == 768 * MiB + DRIVER_RESERVE
    assert devices[2]["lease"] is None  # used, but nobody leased it
    table = gpus(gpu_host).stdout
    assert "GPU  PID" in table
    (row,) = [x for x in table.splitlines() if x.split()[:2] == ["2", str(two.pid)]]
    assert "512.0 MiB" in row and "fake_cuda.py --device 0 --mem 512MiB --seconds 120" in row


def test_a_stale_record_of_a_dead_holder_shows_free(
    gpu_host: dict[str, str], processes: list[subprocess.Popen[str]]
) -> None:
    """A holder killed with SIGKILL leaves its record in the lock file; the kernel let its lock go."""
    devices = read_devices(Path(gpu_host["FAKE_NVML_STATE"]))
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from agenttrace.gpu.lease import acquire\n"
         "from agenttrace.gpu.nvml import Device\n"
         f"devices = [Device(i, u, 'x', 1) for i, u in enumerate({[d['uuid'] for d in devices]!r})]\n"
         "acquire('0', devices, run_id='run-killed', store=None, wait_s=0)\n"
         "print('held', flush=True)\n"
         "time.sleep(600)\n"],
        stdout=subprocess.PIPE, text=True, env={**os.environ, **gpu_host},
    )  # fmt: skip
    processes.append(holder)
    assert holder.stdout is not None and holder.stdout.readline() == "held\n"
    assert gpus_json(gpu_host)[0]["lease"]["run_id"] == "run-killed"
    holder.kill()
    holder.wait()
    lock = Path(gpu_host["AGENTTRACE_GPU_LOCK_DIR"]) / f"{devices[0]['uuid']}.lock"
    assert "run-killed" in lock.read_text()
    assert gpus_json(gpu_host)[0]["lease"] is None
    assert gpus(gpu_host).stdout.splitlines()[1].endswith("free")


def test_without_nvml_it_is_one_error_line_and_exit_2() -> None:
    """The real CLI on this machine, which has no NVIDIA driver: pynvml finds no library."""
    for args in (["gpus"], ["gpus", "--json"]):
        result = run_cli(*args)
        assert result.returncode == 2, result
        assert result.stdout == ""
        assert result.stderr.startswith("Error: NVML is not available"), result.stderr
        assert "no NVIDIA driver here?" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_help_explains_leases_and_the_lock_dir() -> None:
    result = run_cli("gpus", "--help")
    assert result.returncode == 0
    text = " ".join(result.stdout.split())
    assert "List this host's GPUs, their leases and the processes using them now." in text
    assert "$AGENTTRACE_GPU_LOCK_DIR" in text and "--json" in text
    listed = run_cli("--help")
    assert "gpus" in listed.stdout
