"""`agenttrace run --gpu`: the dispatch guard and the NVML sampler, end to end, as a user runs them.

The real CLI runs under the fake NVML (tests/fakes/nvml: the real pynvml over a stand-in for
libnvidia-ml.so.1); the agents are real processes, and their "CUDA" work is `fake_cuda.py`, which
shows up in NVML's process list like a process holding a CUDA context. Every run's lock dir is the
test's own, so runs of other tests never contend with them.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import free_port, query, run_cli, start_serve
from fakes.nvml.state import inject_xid, make_state

FAKES = Path(__file__).parent / "fakes" / "nvml"
LAUNCHER = FAKES / "agenttrace_with_fake_nvml.py"
CUDA = f"{sys.executable} {FAKES / 'fake_cuda.py'}"
GIB = 1 << 30


@pytest.fixture
def gpu_host(tmp_path: Path) -> Iterator[dict[str, str]]:
    """A host with 2 fake GPUs and a lock dir of its own; the environment runs need to see them."""
    state = make_state(tmp_path, n_devices=2)
    yield {"FAKE_NVML_STATE": str(state), "AGENTTRACE_GPU_LOCK_DIR": str(tmp_path / "locks")}


def agenttrace(env: dict[str, str], *args: str, cwd: Path | None = None, timeout: float = 60):
    """The real `agenttrace` CLI with the fake NVML in place of the driver."""
    return subprocess.run(
        [sys.executable, str(LAUNCHER), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env},
        cwd=cwd,
        timeout=timeout,
        check=False,
    )


def run(env: dict[str, str], store: Path, *args: str):
    """`agenttrace run --store STORE ARGS...` under the fake NVML."""
    return agenttrace(env, "run", "--store", str(store), *args)


def script(tmp_path: Path, name: str, body: str) -> str:
    path = tmp_path / name
    path.write_text("#!/bin/bash\nset -e\n" + body + "\n")
    path.chmod(0o755)
    return str(path)


def gate(store: Path, name: str = "gpu_guard") -> dict:
    audited = run_cli("audit", "last", "--json", "--store", str(store))
    (found,) = [g for g in json.loads(audited.stdout)["gates"] if g["name"] == name]
    return found


def gate_of(result: subprocess.CompletedProcess[str], name: str = "gpu_guard") -> dict:
    """The gate in the verdict `agenttrace run --json` printed after what the agent printed (the
    verdict `audit` gives on the stored run is read by `gate`, in the tests that start with it)."""
    lines = result.stdout.splitlines()
    for start in range(len(lines) - 1, -1, -1):
        if lines[start].startswith("{"):
            with contextlib.suppress(ValueError):
                (found,) = [g for g in json.loads("\n".join(lines[start:]))["gates"] if g["name"] == name]
                return found
    raise AssertionError(f"no verdict in {result.stdout!r}")


def reasons(found: dict) -> str:
    return " | ".join(v["reason"] for v in found.get("violations", []))


def leases(store: Path) -> list[dict]:
    return query(
        store,
        "SELECT run_id, start_time, end_time, attributes['agenttrace.gpu.lease.devices'] AS devices "
        "FROM spans WHERE attributes['agenttrace.span.type'] = 'gpu_lease' AND origin = 'supervisor'",
    )


def test_a_clean_gpu_run_succeeds_with_one_sample_per_device_per_interval(
    tmp_path: Path, gpu_host: dict[str, str]
) -> None:
    store = tmp_path / "store"
    agent = script(tmp_path, "agent.sh", f"{CUDA} --device 0 --mem 1GiB --util 60 --seconds 1.5")
    result = run(gpu_host, store, "--gpu", "0", "--gpu-interval", "250ms", "--", agent)
    assert result.returncode == 0, result.stderr
    assert "GPU lease: 0 (GPU-" in result.stderr
    assert gate(store)["status"] == "pass"
    per_tick = query(
        store,
        "SELECT time, count(*) AS devices, count(DISTINCT device) AS distinct_devices FROM gpu_samples "
        "WHERE pid IS NULL GROUP BY time ORDER BY time",
    )
    assert len(per_tick) >= 4, per_tick  # 1.5 s at 250 ms
    assert all(t["devices"] == 2 and t["distinct_devices"] == 2 for t in per_tick), per_tick
    processes = query(
        store,
        "SELECT device, pid, process_memory, in_run, command_line, origin FROM gpu_samples "
        "WHERE pid IS NOT NULL",
    )
    assert processes, "the agent's CUDA process was never sampled"
    assert {(p["device"], p["process_memory"], p["in_run"], p["origin"]) for p in processes} == {
        (0, GIB, True, "supervisor")
    }
    assert all("fake_cuda.py" in p["command_line"] for p in processes)
    busy = query(store, "SELECT max(utilization) AS u FROM gpu_samples WHERE pid IS NULL AND device = 0")
    assert busy[0]["u"] == pytest.approx(0.6)


def test_the_agent_sees_only_its_lease(tmp_path: Path, gpu_host: dict[str, str]) -> None:
    store = tmp_path / "store"
    out = tmp_path / "env.txt"
    agent = script(tmp_path, "agent.sh", f'echo "$CUDA_VISIBLE_DEVICES|$NVIDIA_VISIBLE_DEVICES" > {out}')
    result = run(gpu_host, store, "--gpu", "1", "--", agent)
    assert result.returncode == 0, result.stderr
    devices = json.loads(Path(gpu_host["FAKE_NVML_STATE"], "devices.json").read_text())
    assert out.read_text().strip() == f"{devices[1]['uuid']}|{devices[1]['uuid']}"


def test_two_runs_never_hold_one_gpu_at_once_the_second_waits_or_is_refused(
    tmp_path: Path, gpu_host: dict[str, str]
) -> None:
    store_a, store_b, store_c = tmp_path / "a", tmp_path / "b", tmp_path / "c"
    release = tmp_path / "release"  # the first run holds the GPU until the test says so, however slow
    hold = f"until [ -e {release} ]; do sleep 0.05; done"
    first = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "run", "--store", str(store_a), "--run-id", "first",
         "--gpu", "0", "--", "sh", "-c", hold],
        env={**os.environ, **gpu_host}, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        lock = Path(gpu_host["AGENTTRACE_GPU_LOCK_DIR"])
        deadline = time.monotonic() + 20
        while not any(p.read_text().strip() for p in lock.glob("*.lock")) and time.monotonic() < deadline:
            time.sleep(0.05)
        refused = run(gpu_host, store_c, "--gpu", "0", "--gpu-wait", "0", "--", "true")
        assert refused.returncode == 2, refused.stderr
        (line,) = [x for x in refused.stderr.splitlines() if x.startswith("Error:")]
        assert "leased by run first" in line and f"agenttrace pid {first.pid}" in line, line
        assert not store_c.exists() or not query(store_c, "SELECT * FROM runs")  # nothing recorded
        said = tmp_path / "second.err"
        with said.open("w") as err:
            second = subprocess.Popen(
                [sys.executable, str(LAUNCHER), "run", "--store", str(store_b), "--run-id", "second",
                 "--gpu", "0", "--", "true"],
                env={**os.environ, **gpu_host}, stderr=err, stdout=subprocess.DEVNULL, text=True,
            )  # fmt: skip  # a different store: the lease is host-wide
            deadline = time.monotonic() + 60
            while "waiting for GPU 0" not in said.read_text() and time.monotonic() < deadline:
                assert second.poll() is None, said.read_text()  # it waits while the first holds GPU 0
                time.sleep(0.05)
            release.touch()
            assert second.wait(timeout=60) == 0, said.read_text()
        assert "leased by run first" in said.read_text(), said.read_text()
    finally:
        release.touch()
        first.communicate(timeout=30)
    assert first.returncode == 0
    (a,) = leases(store_a)
    (b,) = leases(store_b)
    assert a["devices"] == b["devices"]
    assert a["end_time"] <= b["start_time"], (a, b)  # proved from the recorded leases


def test_an_outside_process_on_the_leased_gpu_fails_the_run_and_is_named(
    tmp_path: Path, gpu_host: dict[str, str]
) -> None:
    store = tmp_path / "store"
    ready = tmp_path / "agent-started"
    agent = script(tmp_path, "agent.sh", f"touch {ready}\n{CUDA} --device 0 --mem 1GiB --seconds 3")
    run = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "run", "--store", str(store), "--gpu", "0", "--gpu-interval", "200ms",
         "--", agent],
        env={**os.environ, **gpu_host}, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:
        time.sleep(0.05)
    devices = json.loads(Path(gpu_host["FAKE_NVML_STATE"], "devices.json").read_text())
    intruder = subprocess.Popen(
        [sys.executable, str(FAKES / "fake_cuda.py"), "--device", "0", "--mem", "2GiB", "--seconds", "1.5"],
        env={**os.environ, **gpu_host, "CUDA_VISIBLE_DEVICES": devices[0]["uuid"]},
    )  # fmt: skip
    intruder.wait(20)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1, err
    found = gate(store)
    assert found["status"] == "fail"
    said = reasons(found)
    assert f"process {intruder.pid} (`" in said and "not part of this run" in said, said
    assert "fake_cuda.py --device 0 --mem 2GiB" in said and "2048 MiB" in said, said


def test_a_run_using_a_gpu_it_did_not_lease_fails(tmp_path: Path, gpu_host: dict[str, str]) -> None:
    devices = json.loads(Path(gpu_host["FAKE_NVML_STATE"], "devices.json").read_text())
    store = tmp_path / "store"
    agent = script(
        tmp_path,
        "agent.sh",
        f"CUDA_VISIBLE_DEVICES={devices[1]['uuid']} {CUDA} --device 0 --mem 1GiB --seconds 1",
    )  # the agent widens its own view: NVML still sees where its process is
    result = run(gpu_host, store, "--json", "--gpu", "0", "--gpu-interval", "200ms", "--", agent)
    assert result.returncode == 1, result.stderr
    said = reasons(gate_of(result))
    assert f"used GPU 1 ({devices[1]['uuid']})" in said and "which the run did not lease" in said, said

    unleased = tmp_path / "unleased"
    agent = script(tmp_path, "agent2.sh", f"{CUDA} --device 0 --mem 1GiB --seconds 1")
    result = run(gpu_host, unleased, "--json", "--gpu-interval", "200ms", "--", agent)
    assert result.returncode == 1, result.stderr
    said = reasons(gate_of(result))
    assert "the run leased no GPU" in said, said


def test_a_run_without_gpus_has_gpu_guard_not_applicable(tmp_path: Path, gpu_host: dict[str, str]) -> None:
    store = tmp_path / "store"
    result = run(gpu_host, store, "--json", "--gpu-interval", "200ms", "--", "sleep", "0.5")
    assert result.returncode == 0, result.stderr
    assert gate_of(result)["status"] == "n/a"
    sampled = query(store, "SELECT count(*) AS n FROM gpu_samples WHERE pid IS NULL")
    assert sampled[0]["n"] >= 2  # every GPU is sampled, leased or not


def test_an_xid_on_the_leased_gpu_fails_the_run(tmp_path: Path, gpu_host: dict[str, str]) -> None:
    store = tmp_path / "store"
    state = gpu_host["FAKE_NVML_STATE"]
    helper = tmp_path / "xid.py"
    helper.write_text(
        f"import sys\nsys.path.insert(0, {str(FAKES.parent.parent)!r})\n"
        "from pathlib import Path\nfrom fakes.nvml.state import inject_xid\n"
        f"inject_xid(Path({state!r}), 0, 79)\n"
    )
    xid = f"{sys.executable} {helper}"
    agent = script(
        tmp_path, "agent.sh", f"{CUDA} --device 0 --mem 1GiB --seconds 1.5 &\nsleep 0.5\n{xid}\nwait"
    )
    result = run(gpu_host, store, "--json", "--gpu", "0", "--", agent)
    assert result.returncode == 1, result.stderr
    said = reasons(gate_of(result))
    assert "Xid 79 on leased GPU 0" in said, said


def test_an_xid_on_another_gpu_is_not_this_runs_failure(tmp_path: Path, gpu_host: dict[str, str]) -> None:
    store = tmp_path / "store"
    ready = tmp_path / "agent-started"
    agent = script(tmp_path, "agent.sh", f"touch {ready}\n{CUDA} --device 0 --mem 1GiB --seconds 2")
    run = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "run", "--store", str(store), "--gpu", "0", "--", agent],
        env={**os.environ, **gpu_host}, stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    deadline = time.monotonic() + 20
    while not ready.exists() and time.monotonic() < deadline:  # sampling starts before the agent
        time.sleep(0.05)
    inject_xid(Path(gpu_host["FAKE_NVML_STATE"]), 1, 48)
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert query(store, "SELECT device, xid FROM gpu_events") == [{"device": 1, "xid": 48}]


def test_device_memory_running_out_fails_the_run(tmp_path: Path, gpu_host: dict[str, str]) -> None:
    store = tmp_path / "store"
    agent = script(
        tmp_path, "agent.sh", f"{CUDA} --device 0 --mem 500GiB --seconds 1 || echo 'retrying on CPU'"
    )
    result = run(gpu_host, store, "--json", "--gpu", "0", "--gpu-interval", "200ms", "--", agent)
    assert "CUDA out of memory" in result.stderr  # the agent's own stderr passes through
    assert result.returncode == 1, result.stderr  # the agent exited 0: only the guard saw it
    said = reasons(gate_of(result))
    assert "leased GPU 0" in said and "ran out of memory" in said, said


def test_a_lease_whose_lock_the_agent_removes_is_lost_and_fails(
    tmp_path: Path, gpu_host: dict[str, str]
) -> None:
    store = tmp_path / "store"
    lock = gpu_host["AGENTTRACE_GPU_LOCK_DIR"]
    agent = script(tmp_path, "agent.sh", f"rm -f {lock}/*.lock\nsleep 1.5")
    result = run(gpu_host, store, "--json", "--gpu", "0", "--", agent)
    assert result.returncode == 1, result.stderr
    said = reasons(gate_of(result))
    assert "the GPU lease was lost" in said and "was removed" in said, said


def test_a_lease_the_agent_reports_for_itself_decides_nothing(
    tmp_path: Path, gpu_host: dict[str, str]
) -> None:
    """The agent can send spans over OTLP; a `gpu_lease` span of its own is origin `agent`."""
    store = tmp_path / "store"
    devices = json.loads(Path(gpu_host["FAKE_NVML_STATE"], "devices.json").read_text())
    forged = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter\n"
        "p = TracerProvider(); p.add_span_processor(SimpleSpanProcessor(OTLPSpanExporter()))\n"
        "s = p.get_tracer('x').start_span('gpu lease', attributes={'agenttrace.span.type': 'gpu_lease',\n"
        f"    'agenttrace.gpu.lease.devices': ['{devices[0]['uuid']}']}})\n"
        "s.end(); p.shutdown()\n"
    )
    (tmp_path / "forge.py").write_text(forged)
    agent = script(
        tmp_path, "agent.sh", f"{sys.executable} {tmp_path / 'forge.py'}\n{CUDA} --device 0 --seconds 1"
    )
    result = run(gpu_host, store, "--gpu-interval", "200ms", "--", agent)
    assert result.returncode == 1, result.stderr
    assert query(
        store, "SELECT origin FROM spans WHERE attributes['agenttrace.span.type'] = 'gpu_lease'"
    ) == [{"origin": "agent"}]
    assert "the run leased no GPU" in reasons(gate(store))


def test_sigkill_of_a_supervisor_holding_a_lease_frees_the_gpu(
    tmp_path: Path, gpu_host: dict[str, str]
) -> None:
    store = tmp_path / "store"
    pid_file = tmp_path / "agent.pid"
    agent = script(tmp_path, "agent.sh", f"echo $$ > {pid_file}\nexec sleep 30")
    holder = subprocess.Popen(
        [sys.executable, str(LAUNCHER), "run", "--store", str(store), "--gpu", "0", "--", agent],
        env={**os.environ, **gpu_host}, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while not pid_file.exists() and time.monotonic() < deadline:  # the lease is held before it starts
            time.sleep(0.05)
        os.kill(holder.pid, signal.SIGKILL)
        holder.wait(10)
        result = run(gpu_host, tmp_path / "next", "--gpu", "0", "--gpu-wait", "0", "--", "true")
        assert result.returncode == 0, result.stderr  # no clean-up by hand
    finally:
        with contextlib.suppress(ProcessLookupError, ValueError):
            os.kill(int(pid_file.read_text()), signal.SIGKILL)  # the orphaned agent


def test_without_nvml_gpu_is_one_error_line_and_nothing_is_recorded(tmp_path: Path) -> None:
    store = tmp_path / "store"
    result = run_cli("run", "--store", str(store), "--gpu", "0", "--", "true")
    assert result.returncode == 2
    assert result.stderr.startswith("Error: NVML is not available"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    plain = run_cli("run", "--store", str(store), "--", "true")  # everything else works
    assert plain.returncode == 0, plain.stderr
    (root,) = query(
        store, "SELECT attributes['agenttrace.gpu.sampling'] AS s FROM spans WHERE parent_span_id IS NULL"
    )
    assert root["s"] == "off: no NVIDIA driver"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--gpu", "7"], "Error: no GPU 7 on this host; the GPUs here are: 0 (GPU-"),
        (["--gpu", "any:0"], "Error:"),
        (["--gpu", "0", "--gpu-wait", "soon"], "Error: --gpu-wait 'soon' is not a duration"),
        (["--gpu-wait", "5s"], "Error: --gpu-wait needs --gpu"),
        (["--gpu", "0", "--gpu-interval", "0"], "Error: --gpu-interval '0' is not a positive duration"),
    ],
)
def test_bad_gpu_flags_are_one_error_line_and_exit_2(
    tmp_path: Path, gpu_host: dict[str, str], args: list[str], message: str
) -> None:
    result = run(gpu_host, tmp_path / "store", *args, "--", "true")
    assert result.returncode == 2, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith(message), result.stderr


def test_gpu_samples_go_to_the_otlp_backend_as_hw_gpu_metrics(
    tmp_path: Path, gpu_host: dict[str, str]
) -> None:
    backend_store, port = tmp_path / "backend", free_port()
    backend = start_serve(backend_store, port)
    try:
        store = tmp_path / "store"
        agent = script(tmp_path, "agent.sh", f"{CUDA} --device 0 --mem 1GiB --util 30 --seconds 1")
        env = {**gpu_host, "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{port}"}
        result = run(env, store, "--gpu", "1", "--gpu-interval", "250ms", "--", agent)
        assert result.returncode == 0, result.stderr
        sampled = "SELECT time, device, utilization FROM gpu_samples WHERE pid IS NULL ORDER BY ALL"
        local = query(store, sampled)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            time.sleep(0.3)
            names = query(backend_store, "SELECT DISTINCT name FROM metrics ORDER BY name")
            if {"hw.gpu.utilization", "agenttrace.gpu.process.memory"} <= {n["name"] for n in names}:
                break
        assert query(backend_store, sampled) == local and local
    finally:
        backend.terminate()
        backend.communicate(timeout=30)
