"""agenttrace.gpu.nvml over the real pynvml and the fake NVML library (tests/fakes/nvml), with real
fake-CUDA processes (tests/fakes/nvml/fake_cuda.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from fakes.nvml.activate import activate, deactivate
from fakes.nvml.state import (
    DRIVER_RESERVE,
    STATE_ENV,
    MiB,
    bump_ecc,
    inject_xid,
    make_state,
    read_devices,
    write_devices,
)

from agenttrace.errors import GpuError
from agenttrace.gpu.nvml import Device, GpuProcess, Nvml

FAKE_CUDA = Path(__file__).parent / "fakes" / "nvml" / "fake_cuda.py"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """Two fake devices, this process's pynvml on the fake library."""
    yield from _fake(tmp_path, monkeypatch, 2)


@pytest.fixture
def fake8(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from _fake(tmp_path, monkeypatch, 8)


def _fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, n: int) -> Iterator[Path]:
    state = make_state(tmp_path, n_devices=n)
    monkeypatch.setenv(STATE_ENV, str(state))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    assert activate()
    try:
        yield state
    finally:
        deactivate()


class Cuda:
    """Fake CUDA processes, stopped at the end of the test."""

    def __init__(self) -> None:
        self.procs: list[subprocess.Popen[str]] = []

    def start(self, device: int, mem: str = "512MiB", util: int = 50, kind: str = "compute") -> int:
        argv = [str(FAKE_CUDA), "--device", str(device), "--mem", mem, "--util", str(util), "--kind", kind]
        proc = subprocess.Popen(
            [sys.executable, *argv],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.procs.append(proc)
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("fake_cuda: ready"), (line, proc.stderr.read() if proc.stderr else "")
        return proc.pid

    def stop(self, pid: int) -> None:
        for proc in self.procs:
            if proc.pid == pid:
                proc.terminate()
                proc.wait()

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            for stream in (proc.stdout, proc.stderr):
                if stream is not None:
                    stream.close()


@pytest.fixture
def cuda() -> Iterator[Cuda]:
    procs = Cuda()
    try:
        yield procs
    finally:
        procs.close()


def test_without_a_driver_open_says_nvml_is_not_available(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_ENV)  # the fake library answers as a host without a loaded driver
    with pytest.raises(
        GpuError, match=r"^NVML is not available: Driver Not Loaded \(no NVIDIA driver here\?\)"
    ):
        Nvml.open()


def test_devices_are_listed_by_index_with_uuid_name_and_memory(fake8: Path) -> None:
    listed = read_devices(fake8)
    with Nvml.open() as nvml:
        devices = nvml.devices()
    assert devices == [
        Device(index=i, uuid=d["uuid"], name="NVIDIA H200", memory_total=d["memory_total"])
        for i, d in enumerate(listed)
    ]
    assert len(devices) == 8


def test_a_device_is_found_by_index_uuid_or_unique_uuid_prefix(fake: Path) -> None:
    uuids = [d["uuid"] for d in read_devices(fake)]
    with Nvml.open() as nvml:
        assert nvml.device(1).uuid == uuids[1]
        assert nvml.device("1").uuid == uuids[1]
        assert nvml.device(uuids[0]).index == 0
        assert nvml.device("GPU-" + uuids[0][4:].upper()).index == 0
        assert nvml.device(uuids[1][:12]).index == 1
        for spec in ("2", "GPU-", "GPU-nope", "-1", ""):
            with pytest.raises(GpuError) as caught:
                nvml.device(spec)
            # the error names the devices there are
            assert all(u in str(caught.value) for u in uuids), spec
            assert "0 (" in str(caught.value) and "1 (" in str(caught.value)


def test_readings_follow_the_processes_on_the_device(fake: Path, cuda: Cuda) -> None:
    with Nvml.open() as nvml:
        idle = nvml.reading(1)
        assert idle.utilization == 0.0
        assert idle.memory_used == DRIVER_RESERVE
        assert idle.memory_total == read_devices(fake)[1]["memory_total"]
        cuda.start(1, "1GiB", util=30)
        cuda.start(1, "256MiB", util=40)
        busy = nvml.reading(1)
        assert busy.utilization == pytest.approx(0.7)
        assert busy.memory_used == DRIVER_RESERVE + 1280 * MiB
        assert busy.power_w is not None and idle.power_w is not None and busy.power_w > idle.power_w
        assert busy.temperature_c is not None and idle.temperature_c is not None
        assert busy.temperature_c > idle.temperature_c
        assert busy.sm_clock_mhz is not None and idle.sm_clock_mhz is not None
        assert busy.sm_clock_mhz > idle.sm_clock_mhz
        assert busy.memory_clock_mhz is not None
        assert (busy.ecc_uncorrected, busy.ecc_corrected) == (0, 0)
        assert nvml.reading(0).utilization == 0.0  # the other device is untouched
        bump_ecc(fake, 1, uncorrected=2, corrected=5)
        after = nvml.reading(1)
        assert (after.ecc_uncorrected, after.ecc_corrected) == (2, 5)


def test_an_unsupported_reading_is_none_not_an_error(fake: Path) -> None:
    devices = read_devices(fake)
    devices[0]["ecc"] = False
    write_devices(fake, devices)
    with Nvml.open() as nvml:
        reading = nvml.reading(0)
        assert reading.ecc_uncorrected is None and reading.ecc_corrected is None
        assert reading.utilization == 0.0 and reading.memory_used == DRIVER_RESERVE
        assert nvml.reading(1).ecc_uncorrected == 0


def test_processes_list_compute_and_graphics_contexts_and_drop_the_dead(fake: Path, cuda: Cuda) -> None:
    with Nvml.open() as nvml:
        assert nvml.processes(0) == []
        a = cuda.start(0, "512MiB")
        b = cuda.start(0, "2GiB", kind="graphics")
        c = cuda.start(1, "64MiB")
        assert nvml.processes(0) == sorted([GpuProcess(a, 512 * MiB), GpuProcess(b, 2048 * MiB)])
        assert nvml.processes(1) == [GpuProcess(c, 64 * MiB)]
        cuda.stop(a)
        assert nvml.processes(0) == [GpuProcess(b, 2048 * MiB)]
        with pytest.raises(GpuError, match="no GPU 5"):
            nvml.processes(5)


def test_events_deliver_xid_and_uncorrected_ecc_with_their_device(fake: Path) -> None:
    uuids = [d["uuid"] for d in read_devices(fake)]
    with Nvml.open() as nvml, nvml.events() as watch:
        assert watch.devices == [0, 1]
        assert watch.wait(20) is None  # nothing yet: the timeout
        inject_xid(fake, 1, 79)
        event = watch.wait(5000)
        assert event is not None
        assert (event.device, event.uuid, event.kind, event.data) == (1, uuids[1], "xid", 79)
        bump_ecc(fake, 0, uncorrected=1)
        event = watch.wait(5000)
        assert event is not None and (event.device, event.kind) == (0, "ecc_uncorrected")
        bump_ecc(fake, 0, corrected=3)  # corrected errors are counted, not watched
        assert watch.wait(50) is None


def test_devices_without_event_support_are_left_out_of_the_watch(fake: Path) -> None:
    devices = read_devices(fake)
    devices[0]["events"] = False
    write_devices(fake, devices)
    with Nvml.open() as nvml, nvml.events() as watch:
        assert watch.devices == [1]
        inject_xid(fake, 0, 48)
        assert watch.wait(50) is None
        inject_xid(fake, 1, 31)
        event = watch.wait(5000)
        assert event is not None and (event.device, event.data) == (1, 31)


def test_a_device_that_stops_answering_is_a_gpu_error_and_the_others_go_on(fake: Path) -> None:
    with Nvml.open() as nvml:
        assert nvml.reading(1).utilization == 0.0
        write_devices(fake, read_devices(fake)[:1])  # device 1 falls off the bus
        with pytest.raises(GpuError, match=r"^GPU 1: NVML cannot read its utilization: Invalid Argument"):
            nvml.reading(1)
        with pytest.raises(GpuError, match="GPU 1"):
            nvml.processes(1)
        assert nvml.reading(0).memory_used == DRIVER_RESERVE


def test_close_is_idempotent_and_sessions_are_independent(fake: Path) -> None:
    first = Nvml.open()
    with Nvml.open() as second:
        first.close()
        first.close()
        assert second.reading(0).utilization == 0.0  # NVML counts its inits: still open here


def test_importing_the_gpu_modules_does_not_import_pynvml() -> None:
    code = (
        "import sys\n"
        "import agenttrace.gpu.nvml, agenttrace.gpu.sampler, agenttrace.gpu.samples\n"
        "loaded = [m for m in sys.modules if 'nvml' in m and not m.startswith('agenttrace')]\n"
        "print(json.dumps(sorted(loaded)))\n"
    )
    env = {k: v for k, v in os.environ.items() if k != STATE_ENV}
    out = subprocess.run(
        [sys.executable, "-c", "import json\n" + code], capture_output=True, text=True, env=env, check=True
    )
    assert json.loads(out.stdout) == []
