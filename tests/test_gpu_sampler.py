"""agenttrace.gpu.sampler and samples: the NVML sampler over the real pynvml and the fake NVML
library, real fake-CUDA processes, samples through a real StoreWriter into the store's views
(`gpu_samples`, `gpu_events`), and the samples as OTLP metrics decoded back by agenttrace's receiver
code."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from conftest import query
from fakes.nvml.state import DRIVER_RESERVE, STATE_ENV, MiB, bump_ecc, inject_xid, read_devices, write_devices
from test_gpu_nvml import Cuda, _fake

from agenttrace.gpu.nvml import Nvml
from agenttrace.gpu.sampler import GpuSampler
from agenttrace.gpu.samples import to_otlp
from agenttrace.otlp.decode import METRICS, PROTOBUF, parse_request
from agenttrace.otlp.logs_metrics import convert_metrics
from agenttrace.store import StoreLayout, StoreWriter
from agenttrace.store.layout import SAMPLES
from agenttrace.store.schema import SAMPLE_SCHEMA

RUN = "20261201T120000-9a1b"


@pytest.fixture
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from _fake(tmp_path, monkeypatch, 2)


@pytest.fixture(params=[2, 8], ids=["2-devices", "8-devices"])
def fake_n(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    yield from _fake(tmp_path, monkeypatch, request.param)


@pytest.fixture
def cuda() -> Iterator[Cuda]:
    procs = Cuda()
    try:
        yield procs
    finally:
        procs.close()


class Sink:
    """What the sampler writes: appended to a real store (kind `samples`) and kept for the test."""

    def __init__(self, store: Path) -> None:
        self.store = store
        self.writer = StoreWriter(StoreLayout(store))
        self.tables: list[pa.Table] = []
        self._lock = threading.Lock()

    def __call__(self, table: pa.Table) -> None:
        self.writer.append(table, kind=SAMPLES)
        with self._lock:
            self.tables.append(table)

    def rows(self) -> list[dict[str, Any]]:
        with self._lock:
            tables = list(self.tables)
        if not tables:
            return []
        return pa.concat_tables(tables).to_pylist()

    def seal(self) -> None:
        self.writer.seal_run(RUN)
        self.writer.close()


@pytest.fixture
def sink(tmp_path: Path) -> Sink:
    return Sink(tmp_path / "store")


def until(what: Callable[[], object], deadline_s: float = 30.0) -> None:
    """Wait for a condition (a generous deadline for a loaded machine: not a timing assertion)."""
    end = time.monotonic() + deadline_s
    while not what():
        assert time.monotonic() < end, "condition not met"
        time.sleep(0.02)


def pids_at_last_tick(sink: Sink) -> set[int]:
    rows = [r for r in sink.rows() if r["MetricName"] == "agenttrace.gpu.process.memory"]
    ticks = [r for r in sink.rows() if r["MetricName"] == "hw.gpu.utilization"]
    if not ticks:
        return set()
    last = max(r["TimeUnix"] for r in ticks)
    return {int(dict(r["Attributes"])["process.pid"]) for r in rows if r["TimeUnix"] == last}


def test_one_device_row_per_device_per_tick_and_process_memory_as_the_fake_says(
    fake_n: Path, sink: Sink, cuda: Cuda
) -> None:
    state = fake_n
    n_devices = len(read_devices(state))
    ours = cuda.start(0, "512MiB", util=60)
    foreign = cuda.start(n_devices - 1, "3GiB", util=25)
    sampler = GpuSampler(RUN, sink, interval=0.05, in_run=lambda pid: pid == ours).start()
    until(lambda: sampler.ticks >= 4)
    sampler.stop()
    sink.seal()
    assert (sampler.unavailable, sampler.errors, sampler.write_failures) == (None, [], 0)
    uuids = [d["uuid"] for d in read_devices(state)]

    device_rows = query(sink.store, "SELECT * FROM gpu_samples WHERE pid IS NULL ORDER BY time, device")
    times = sorted({r["time"] for r in device_rows})
    assert len(times) == sampler.ticks
    assert len(device_rows) == sampler.ticks * n_devices  # exactly one row per device per tick
    for r in device_rows:
        assert r["uuid"] == uuids[r["device"]] and r["device_name"] == "NVIDIA H200"
        assert r["memory_total"] == read_devices(state)[r["device"]]["memory_total"]
        assert r["power_w"] > 0 and r["temperature_c"] > 0 and r["sm_clock_mhz"] > 0
        assert (r["ecc_uncorrected"], r["ecc_corrected"]) == (0, 0)
        assert r["origin"] is None  # no manifest: not a supervised run
    by_device = {r["device"]: r for r in device_rows if r["time"] == times[-1]}
    assert by_device[0]["memory_used"] == DRIVER_RESERVE + 512 * MiB
    assert by_device[0]["utilization"] == pytest.approx(0.6)
    assert by_device[n_devices - 1]["memory_used"] == DRIVER_RESERVE + 3 * 1024 * MiB
    assert by_device[n_devices - 1]["utilization"] == pytest.approx(0.25)
    for idle in range(1, n_devices - 1):
        assert (by_device[idle]["memory_used"], by_device[idle]["utilization"]) == (DRIVER_RESERVE, 0.0)

    procs = query(sink.store, "SELECT * FROM gpu_samples WHERE pid IS NOT NULL ORDER BY time, pid")
    assert len(procs) == 2 * sampler.ticks
    for r in procs:
        assert r["memory_used"] is None and r["utilization"] is None  # device figures are on device rows
        assert r["parent_pid"] == os.getpid()
        assert "fake_cuda.py --device" in r["command_line"]
        assert r["process_start_time"] is not None
        if r["pid"] == ours:
            assert (r["device"], r["process_memory"], r["in_run"]) == (0, 512 * MiB, True)
        else:
            assert r["pid"] == foreign
            assert (r["device"], r["process_memory"], r["in_run"]) == (n_devices - 1, 3 * 1024 * MiB, False)
    assert query(sink.store, "SELECT * FROM gpu_events") == []


def test_processes_coming_and_going_are_seen_at_the_ticks_they_were_there(
    fake: Path, sink: Sink, cuda: Cuda
) -> None:
    sampler = GpuSampler(RUN, sink, interval=0.05, in_run=lambda pid: True).start()
    a = cuda.start(1, "128MiB")
    until(lambda: pids_at_last_tick(sink) == {a})
    b = cuda.start(1, "256MiB")
    until(lambda: pids_at_last_tick(sink) == {a, b})
    cuda.stop(a)
    until(lambda: pids_at_last_tick(sink) == {b})
    sampler.stop()
    sink.seal()
    rows = query(
        sink.store,
        "SELECT pid, min(time) AS first, max(time) AS last, max(process_memory) AS memory "
        "FROM gpu_samples WHERE pid IS NOT NULL GROUP BY pid",
    )
    seen = {r["pid"]: r for r in rows}
    assert set(seen) == {a, b}
    assert (seen[a]["memory"], seen[b]["memory"]) == (128 * MiB, 256 * MiB)
    assert seen[a]["first"] < seen[b]["first"] and seen[a]["last"] < seen[b]["last"]
    # at every tick the device's memory is the reserve plus the memory of the processes listed then
    check = query(
        sink.store,
        "SELECT d.time, d.memory_used, coalesce(sum(p.process_memory), 0) AS procs FROM gpu_samples d "
        "LEFT JOIN gpu_samples p ON p.time = d.time AND p.device = d.device AND p.pid IS NOT NULL "
        "WHERE d.pid IS NULL AND d.device = 1 GROUP BY d.time, d.memory_used",
    )
    # (a tick reads the device's memory, then its processes, as NVML's two calls do: a process
    # that starts or ends between them makes that one tick differ; three came and went here)
    off = [r for r in check if r["memory_used"] != DRIVER_RESERVE + r["procs"]]
    assert check and len(off) <= 3, off


def test_xid_and_ecc_errors_are_recorded_as_events(fake: Path, sink: Sink) -> None:
    devices = read_devices(fake)
    devices[0]["events"] = False  # device 0: its counters only
    write_devices(fake, devices)
    sampler = GpuSampler(RUN, sink, interval=0.05).start()
    until(lambda: sampler.ticks >= 1)
    assert sampler.event_devices == [1]
    inject_xid(fake, 1, 79)
    bump_ecc(fake, 1, uncorrected=2)
    bump_ecc(fake, 0, uncorrected=3)
    until(lambda: sampler.events >= 2)
    ticks = sampler.ticks
    until(lambda: sampler.ticks >= ticks + 2)  # the counters sampled after the bumps
    sampler.stop()
    sink.seal()
    uuids = [d["uuid"] for d in devices]
    events = query(sink.store, "SELECT * FROM gpu_events ORDER BY kind DESC, source DESC, device")
    assert [(e["device"], e["uuid"], e["kind"], e["xid"], e["errors"], e["source"]) for e in events] == [
        (1, uuids[1], "xid", 79, 1, "event"),
        (1, uuids[1], "ecc_uncorrected", None, 1, "event"),
        (0, uuids[0], "ecc_uncorrected", None, 3, "counter"),
        (1, uuids[1], "ecc_uncorrected", None, 2, "counter"),
    ]
    # an event is one point at the moment NVML reported it: no extra device row in gpu_samples
    assert (
        query(
            sink.store,
            "SELECT count(*) AS n FROM gpu_samples WHERE pid IS NULL GROUP BY time, device HAVING n > 1",
        )
        == []
    )


def test_a_device_failing_mid_run_is_recorded_once_and_the_others_go_on(fake: Path, sink: Sink) -> None:
    sampler = GpuSampler(RUN, sink, interval=0.05).start()
    until(lambda: sampler.ticks >= 2)
    write_devices(fake, read_devices(fake)[:1])  # device 1 falls off the bus
    until(lambda: len(sampler.errors) >= 1)
    ticks = sampler.ticks
    until(lambda: sampler.ticks >= ticks + 3)
    sampler.stop()
    sink.seal()
    assert sampler.errors == ["GPU 1: NVML cannot read its utilization: Invalid Argument"]
    counts = query(sink.store, "SELECT device, count(*) AS n FROM gpu_samples WHERE pid IS NULL GROUP BY 1")
    n = {r["device"]: r["n"] for r in counts}
    assert n[0] == sampler.ticks and n[1] < n[0]


def test_without_nvml_the_sampler_says_why_and_writes_nothing(
    fake: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(STATE_ENV)
    written: list[pa.Table] = []
    sampler = GpuSampler(RUN, written.append, interval=0.05).start()
    until(lambda: not sampler.running)
    sampler.stop()
    assert sampler.unavailable is not None and sampler.unavailable.startswith("NVML is not available")
    assert (written, sampler.ticks, sampler.errors) == ([], 0, [])


def test_write_failures_and_in_run_errors_are_counted_not_raised(fake: Path, cuda: Cuda) -> None:
    calls: list[int] = []

    def failing(table: pa.Table) -> None:
        calls.append(table.num_rows)
        raise OSError("disk full")

    def broken(pid: int) -> bool:
        raise RuntimeError("no process tree")

    pid = cuda.start(0, "64MiB")
    sampler = GpuSampler(RUN, failing, interval=0.05, in_run=broken).start()
    until(lambda: sampler.write_failures >= 3)
    sampler.stop()
    assert sampler.ticks >= 3 and sampler.rows_written == 0
    assert sampler.errors == [
        f"cannot tell whether GPU process {pid} is in the run: no process tree",
        "GPU samples could not be written: OSError: disk full",
    ]


def test_stop_takes_a_last_sample_and_is_bounded_by_its_timeout(fake: Path) -> None:
    written: list[pa.Table] = []
    sampler = GpuSampler(RUN, written.append, interval=3600).start()
    until(lambda: sampler.ticks == 1)
    sampler.stop()  # wakes from the hour-long wait: at most one event slice
    assert not sampler.running and sampler.ticks == 2 and len(written) == 2

    release = threading.Event()
    hung = GpuSampler(RUN, lambda table: release.wait(), interval=3600).start()
    until(lambda: hung.ticks == 1)  # the first tick's write: it hangs
    hung.stop(timeout=0.1)  # a write that hangs: stop() returns all the same
    assert hung.running
    assert hung.errors == ["the GPU sampler did not stop within 0.1 s"]
    release.set()
    until(lambda: not hung.running)


def test_a_given_nvml_session_is_used_and_left_open(fake: Path) -> None:
    written: list[pa.Table] = []
    with Nvml.open() as nvml:
        with GpuSampler(RUN, written.append, interval=0.05, nvml=nvml) as sampler:
            until(lambda: sampler.ticks >= 2)
        assert nvml.reading(0).utilization == 0.0  # still open
    assert written and sampler.errors == []


def test_samples_round_trip_through_otlp(fake: Path, sink: Sink, cuda: Cuda) -> None:
    pid = cuda.start(1, "1GiB", util=10)
    sampler = GpuSampler(RUN, sink, interval=0.05, in_run=lambda p: p == pid).start()
    until(lambda: sampler.ticks >= 2)
    inject_xid(fake, 0, 13)
    until(lambda: sampler.events >= 1)
    sampler.stop()
    original = pa.concat_tables(sink.tables)
    assert set(original.column("MetricType").to_pylist()) == {"Gauge", "Sum"}

    body = to_otlp(original)
    request = parse_request(body, PROTOBUF, METRICS)
    resources = request.resource_metrics
    assert len(resources) == 1
    assert {a.key: a.value.string_value for a in resources[0].resource.attributes} == {
        "service.name": "agenttrace",
        "agenttrace.run.id": RUN,
    }
    names = [m.name for m in resources[0].scope_metrics[0].metrics]
    assert len(names) == len(set(names))  # grouped by metric name
    assert {"hw.gpu.utilization", "hw.gpu.memory.usage", "hw.errors", "agenttrace.gpu.xid"} <= set(names)
    usage = next(m for m in resources[0].scope_metrics[0].metrics if m.name == "hw.gpu.memory.usage")
    assert usage.WhichOneof("data") == "sum" and not usage.sum.is_monotonic

    decoded = convert_metrics(request).batch
    assert decoded.schema == SAMPLE_SCHEMA

    def key(row: dict[str, Any]) -> tuple[Any, ...]:
        return (row["TimeUnix"], row["MetricName"], str(row["Attributes"]))

    assert sorted(pa.Table.from_batches([decoded]).to_pylist(), key=key) == sorted(
        original.to_pylist(), key=key
    )


def test_a_sealed_runs_derived_tables_hold_the_gpu_views(fake: Path, sink: Sink, cuda: Cuda) -> None:
    from test_store_writer import rows

    from agenttrace.analysis.derive import derive_run

    sink.writer.append(rows(RUN, 2))  # the run's spans: a run to derive
    cuda.start(0, "64MiB")
    sampler = GpuSampler(RUN, sink, interval=0.05, in_run=lambda pid: True).start()
    until(lambda: sampler.ticks >= 2)
    inject_xid(fake, 1, 94)
    until(lambda: sampler.events >= 1)
    sampler.stop()
    sink.seal()
    samples_sql = "SELECT * FROM gpu_samples ORDER BY time, device, pid"
    events_sql = "SELECT * FROM gpu_events ORDER BY time"
    from_views = (query(sink.store, samples_sql), query(sink.store, events_sql))
    entry = derive_run(sink.store, RUN)
    assert entry is not None and {"gpu_samples", "gpu_events"} <= set(entry.tables)
    assert (query(sink.store, samples_sql), query(sink.store, events_sql)) == from_views
    assert [(e["kind"], e["xid"]) for e in from_views[1]] == [("xid", 94)]
