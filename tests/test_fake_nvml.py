"""The fake NVML, through the real pynvml: what every GPU test trusts behaves as the driver would."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pynvml
import pytest
from fakes.nvml.activate import activate, deactivate
from fakes.nvml.state import (
    DRIVER_RESERVE,
    STATE_ENV,
    bump_ecc,
    inject_xid,
    make_state,
    read_devices,
    register,
)

REPO = Path(__file__).resolve().parents[1]
FAKE_CUDA = REPO / "tests" / "fakes" / "nvml" / "fake_cuda.py"
LAUNCHER = REPO / "tests" / "fakes" / "nvml" / "agenttrace_with_fake_nvml.py"
GiB = 1 << 30
MiB = 1 << 20


@pytest.fixture
def state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    state = make_state(tmp_path, n_devices=3)
    monkeypatch.setenv(STATE_ENV, str(state))
    return state


@pytest.fixture
def nvml(state: Path) -> Iterator[Path]:
    """pynvml on the fake, initialized."""
    assert activate()
    pynvml.nvmlInit()
    yield state
    pynvml.nvmlShutdown()
    deactivate()


@pytest.fixture
def cuda(state: Path) -> Iterator[list[subprocess.Popen[str]]]:
    """Fake CUDA processes started by a test; any still running at the end are killed."""
    started: list[subprocess.Popen[str]] = []
    yield started
    for proc in started:
        if proc.poll() is None:
            proc.kill()
        proc.wait()
        for stream in (proc.stdout, proc.stderr):
            if stream:
                stream.close()


def start_cuda(
    started: list[subprocess.Popen[str]], *args: str, visible: str | None = None
) -> subprocess.Popen[str]:
    """A fake CUDA process, returned once it is registered (its `ready` line)."""
    env = dict(os.environ)
    env.pop("CUDA_VISIBLE_DEVICES", None)
    if visible is not None:
        env["CUDA_VISIBLE_DEVICES"] = visible
    proc = subprocess.Popen(
        [sys.executable, str(FAKE_CUDA), *args],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    started.append(proc)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    assert line.startswith(f"fake_cuda: ready pid={proc.pid} "), (
        line,
        proc.stderr.read() if proc.stderr else "",
    )
    return proc


def handle(index: int) -> object:
    return pynvml.nvmlDeviceGetHandleByIndex(index)


def compute(index: int) -> dict[int, int]:
    return {p.pid: p.usedGpuMemory for p in pynvml.nvmlDeviceGetComputeRunningProcesses(handle(index))}


@pytest.mark.parametrize("n_devices", [2, 8])
def test_devices_read_through_pynvml(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n_devices: int) -> None:
    state = make_state(tmp_path, n_devices=n_devices)
    monkeypatch.setenv(STATE_ENV, str(state))
    activate()
    pynvml.nvmlInit()
    try:
        devices = read_devices(state)
        assert pynvml.nvmlDeviceGetCount() == n_devices
        bus_ids = set()
        for index, device in enumerate(devices):
            h = handle(index)
            assert pynvml.nvmlDeviceGetIndex(h) == index
            assert pynvml.nvmlDeviceGetUUID(h) == device["uuid"]
            assert pynvml.nvmlDeviceGetName(h) == "NVIDIA H200"
            memory = pynvml.nvmlDeviceGetMemoryInfo(h)
            assert (memory.total, memory.used, memory.free) == (
                device["memory_total"],
                DRIVER_RESERVE,
                device["memory_total"] - DRIVER_RESERVE,
            )
            assert pynvml.nvmlDeviceGetIndex(pynvml.nvmlDeviceGetHandleByUUID(device["uuid"])) == index
            bus_ids.add(pynvml.nvmlDeviceGetPciInfo(h).busId)
            assert pynvml.nvmlDeviceGetComputeRunningProcesses(h) == []
            assert pynvml.nvmlDeviceGetUtilizationRates(h).gpu == 0
        assert len(bus_ids) == n_devices
        assert pynvml.nvmlSystemGetDriverVersion()
        with pytest.raises(pynvml.NVMLError_InvalidArgument):
            handle(n_devices)
        with pytest.raises(pynvml.NVMLError_NotFound):
            pynvml.nvmlDeviceGetHandleByUUID("GPU-00000000-0000-0000-0000-000000000000")
    finally:
        pynvml.nvmlShutdown()
        deactivate()


def test_calls_before_init_and_after_shutdown_fail_uninitialized(state: Path) -> None:
    with pytest.raises(pynvml.NVMLError_Uninitialized):  # no library loaded at all
        pynvml.nvmlDeviceGetCount()
    activate()
    try:
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        pynvml.nvmlInit()
        pynvml.nvmlInit()
        pynvml.nvmlShutdown()
        assert pynvml.nvmlDeviceGetCount() == 3  # init is counted
        pynvml.nvmlShutdown()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlDeviceGetCount()
        with pytest.raises(pynvml.NVMLError_Uninitialized):
            pynvml.nvmlShutdown()
    finally:
        deactivate()


def test_no_driver_when_the_state_is_missing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(STATE_ENV, str(tmp_path / "nothing"))
    activate()
    try:
        with pytest.raises(pynvml.NVMLError_DriverNotLoaded):
            pynvml.nvmlInit()
    finally:
        deactivate()


def test_a_missing_symbol_is_function_not_found_and_versions_are_checked(nvml: Path) -> None:
    with pytest.raises(pynvml.NVMLError_FunctionNotFound):
        pynvml.nvmlDeviceGetFanSpeed(handle(0))
    with pytest.raises(pynvml.NVMLError_ArgumentVersionMismatch):
        pynvml.nvmlDeviceGetMemoryInfo(handle(0), version=0x01000028)
    assert str(pynvml.NVMLError(pynvml.NVML_ERROR_ARGUMENT_VERSION_MISMATCH))  # through nvmlErrorString


def test_a_cuda_process_is_listed_while_alive_and_gone_after_sigterm(nvml: Path, cuda: list) -> None:
    proc = start_cuda(cuda, "--device", "1", "--mem", "1GiB", "--util", "60")
    assert compute(1) == {proc.pid: GiB}
    assert compute(0) == compute(2) == {}
    assert pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle(1)) == []
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle(1))
    assert memory.used == DRIVER_RESERVE + GiB and memory.free == memory.total - memory.used
    v2 = pynvml.nvmlDeviceGetMemoryInfo(handle(1), version=pynvml.nvmlMemory_v2)
    assert (v2.reserved, v2.used, v2.reserved + v2.used + v2.free) == (DRIVER_RESERVE, GiB, v2.total)
    assert pynvml.nvmlDeviceGetUtilizationRates(handle(1)).gpu == 60
    busy, idle = handle(1), handle(0)
    assert pynvml.nvmlDeviceGetPowerUsage(busy) > pynvml.nvmlDeviceGetPowerUsage(idle)
    assert pynvml.nvmlDeviceGetTemperature(busy, 0) > pynvml.nvmlDeviceGetTemperature(idle, 0)
    assert pynvml.nvmlDeviceGetTemperatureV(busy, 0) == pynvml.nvmlDeviceGetTemperature(busy, 0)
    sm = pynvml.NVML_CLOCK_SM
    assert pynvml.nvmlDeviceGetClockInfo(idle, sm) < pynvml.nvmlDeviceGetClockInfo(busy, sm)
    assert pynvml.nvmlDeviceGetClockInfo(busy, sm) <= pynvml.nvmlDeviceGetMaxClockInfo(busy, sm)

    proc.send_signal(signal.SIGTERM)
    assert proc.wait() == -signal.SIGTERM
    assert compute(1) == {}
    assert list((nvml / "procs").iterdir()) == []  # it unregistered
    assert pynvml.nvmlDeviceGetMemoryInfo(handle(1)).used == DRIVER_RESERVE


def test_a_sigkilled_process_is_not_listed_though_its_entry_stays(nvml: Path, cuda: list) -> None:
    proc = start_cuda(cuda, "--mem", "2GiB")
    assert compute(0) == {proc.pid: 2 * GiB}
    proc.kill()
    os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOWAIT)  # dead, not reaped: a zombie
    assert compute(0) == {}
    assert pynvml.nvmlDeviceGetMemoryInfo(handle(0)).used == DRIVER_RESERVE
    assert proc.wait() == -signal.SIGKILL
    assert compute(0) == {}
    assert [p.name for p in (nvml / "procs").iterdir()] == [f"{proc.pid}.json"]


def test_a_reused_pid_does_not_inherit_an_entry(nvml: Path) -> None:
    """An entry counts only for the process that registered it: same pid, same start time."""
    uuid = read_devices(nvml)[0]["uuid"]
    entry = {"pid": os.getpid(), "uuid": uuid, "memory": GiB, "util": 10, "kind": "compute"}
    stat = Path("/proc/self/stat").read_text()
    start_time = int(stat[stat.rindex(")") + 2 :].split()[19])
    register(nvml, {**entry, "start_time": start_time - 1})
    assert compute(0) == {}
    register(nvml, {**entry, "start_time": start_time})
    assert compute(0) == {os.getpid(): GiB}


def test_many_processes_on_one_device(nvml: Path, cuda: list) -> None:
    """pynvml's ask-the-count-then-fetch loop, and utilization summed up to 100%."""
    procs = [start_cuda(cuda, "--device", "2", "--mem", f"{n}GiB", "--util", "40") for n in (1, 2, 3)]
    assert compute(2) == {p.pid: n * GiB for p, n in zip(procs, (1, 2, 3), strict=True)}
    assert pynvml.nvmlDeviceGetUtilizationRates(handle(2)).gpu == 100
    graphics = start_cuda(cuda, "--device", "2", "--kind", "graphics")
    assert [p.pid for p in pynvml.nvmlDeviceGetGraphicsRunningProcesses(handle(2))] == [graphics.pid]
    assert graphics.pid not in compute(2)


@pytest.mark.parametrize("by", ["index", "uuid", "uuid prefix"])
def test_cuda_visible_devices(nvml: Path, cuda: list, by: str) -> None:
    uuids = [d["uuid"] for d in read_devices(nvml)]
    names = {"index": ["2", "0"], "uuid": [uuids[2], uuids[0]], "uuid prefix": [uuids[2][:12], uuids[0][:12]]}
    visible = ",".join(names[by])
    first = start_cuda(cuda, "--device", "0", "--mem", "1GiB", visible=visible)
    second = start_cuda(cuda, "--device", "1", "--mem", "2GiB", visible=visible)
    assert compute(2) == {first.pid: GiB}
    assert compute(0) == {second.pid: 2 * GiB}
    assert compute(1) == {}


def test_cuda_visible_devices_stops_at_an_unknown_entry(nvml: Path, cuda: list) -> None:
    proc = subprocess.run(
        [sys.executable, str(FAKE_CUDA), "--device", "1", "--seconds", "0"],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": "1,7,0"},
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 1
    assert "invalid device ordinal" in proc.stderr


def test_set_but_empty_cuda_visible_devices_is_no_device(nvml: Path) -> None:
    proc = subprocess.run(
        [sys.executable, str(FAKE_CUDA), "--seconds", "0"],
        env={**os.environ, "CUDA_VISIBLE_DEVICES": ""},
        capture_output=True,
        text=True,
    )
    assert (proc.returncode, proc.stdout) == (1, "")
    assert "no CUDA-capable device is detected" in proc.stderr
    assert list((nvml / "procs").iterdir()) == []


def test_oom_fills_the_device_and_says_so_like_pytorch(nvml: Path, cuda: list) -> None:
    hog = start_cuda(cuda, "--device", "1", "--mem", "139GiB")
    free = pynvml.nvmlDeviceGetMemoryInfo(handle(1)).free
    assert 0 < free < 2 * GiB
    oom = subprocess.Popen(
        [sys.executable, str(FAKE_CUDA), "--device", "1", "--mem", "2GiB", "--seconds", "600"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    cuda.append(oom)
    assert oom.stderr is not None
    lines = [oom.stderr.readline() for _ in range(3)]
    assert lines[2].startswith(
        "torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 1 "
    )
    memory = pynvml.nvmlDeviceGetMemoryInfo(handle(1))
    assert (memory.used, memory.free) == (memory.total, 0)  # NVML sees the device full
    assert compute(1) == {hog.pid: 139 * GiB, oom.pid: free}
    oom.send_signal(signal.SIGTERM)
    assert oom.wait() == -signal.SIGTERM
    assert compute(1) == {hog.pid: 139 * GiB}

    again = subprocess.run(  # without --seconds: out at once
        [sys.executable, str(FAKE_CUDA), "--device", "1", "--mem", "2GiB"], capture_output=True, text=True
    )
    assert (again.returncode, again.stdout) == (1, "")
    assert "torch.OutOfMemoryError: CUDA out of memory." in again.stderr
    assert compute(1) == {hog.pid: 139 * GiB}


def test_an_injected_xid_reaches_the_event_set(nvml: Path) -> None:
    inject_xid(nvml, 1, 13)  # before the registration: not delivered
    events = pynvml.nvmlEventSetCreate()
    try:
        supported = pynvml.nvmlDeviceGetSupportedEventTypes(handle(1))
        assert supported & pynvml.nvmlEventTypeXidCriticalError
        pynvml.nvmlDeviceRegisterEvents(handle(1), pynvml.nvmlEventTypeXidCriticalError, events)
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlEventSetWait_v2(events, 0)
        inject_xid(nvml, 0, 48)  # a device not registered: not delivered
        inject_xid(nvml, 1, 79)
        data = pynvml.nvmlEventSetWait_v2(events, 10_000)
        assert (data.eventType, data.eventData) == (pynvml.nvmlEventTypeXidCriticalError, 79)
        assert pynvml.nvmlDeviceGetIndex(data.device) == 1
        with pytest.raises(pynvml.NVMLError_Timeout):
            pynvml.nvmlEventSetWait_v2(events, 50)
    finally:
        pynvml.nvmlEventSetFree(events)
    with pytest.raises(pynvml.NVMLError_InvalidArgument):
        pynvml.nvmlEventSetFree(events)


def test_ecc_bumps_count_and_raise_an_event(nvml: Path) -> None:
    h = handle(2)
    uncorrected, corrected = (
        pynvml.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
        pynvml.NVML_MEMORY_ERROR_TYPE_CORRECTED,
    )
    assert pynvml.nvmlDeviceGetTotalEccErrors(h, uncorrected, pynvml.NVML_VOLATILE_ECC) == 0
    events = pynvml.nvmlEventSetCreate()
    pynvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeDoubleBitEccError, events)
    bump_ecc(nvml, 2, uncorrected=3)
    bump_ecc(nvml, 2, corrected=5)  # single-bit: not registered, not delivered
    assert pynvml.nvmlDeviceGetTotalEccErrors(h, uncorrected, pynvml.NVML_VOLATILE_ECC) == 3
    assert pynvml.nvmlDeviceGetTotalEccErrors(h, corrected, pynvml.NVML_AGGREGATE_ECC) == 5
    assert pynvml.nvmlDeviceGetTotalEccErrors(handle(1), uncorrected, pynvml.NVML_VOLATILE_ECC) == 0
    data = pynvml.nvmlEventSetWait_v2(events, 10_000)
    assert (data.eventType, pynvml.nvmlDeviceGetIndex(data.device)) == (
        pynvml.nvmlEventTypeDoubleBitEccError,
        2,
    )
    with pytest.raises(pynvml.NVMLError_Timeout):
        pynvml.nvmlEventSetWait_v2(events, 0)
    pynvml.nvmlEventSetFree(events)


def test_a_device_without_ecc_or_events(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    state = make_state(tmp_path, n_devices=2, ecc=False, events=False)
    monkeypatch.setenv(STATE_ENV, str(state))
    activate()
    pynvml.nvmlInit()
    try:
        h = handle(0)
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceGetTotalEccErrors(h, 1, 0)
        assert pynvml.nvmlDeviceGetSupportedEventTypes(h) == 0
        events = pynvml.nvmlEventSetCreate()
        with pytest.raises(pynvml.NVMLError_NotSupported):
            pynvml.nvmlDeviceRegisterEvents(h, pynvml.nvmlEventTypeXidCriticalError, events)
        pynvml.nvmlEventSetFree(events)
    finally:
        pynvml.nvmlShutdown()
        deactivate()


def test_the_launcher_runs_the_real_cli(state: Path) -> None:
    result = subprocess.run([sys.executable, str(LAUNCHER), "--help"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "Usage: agenttrace" in result.stdout
