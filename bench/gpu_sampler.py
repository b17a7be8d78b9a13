"""GPU sampler overhead: CPU time of one `GpuSampler` tick (every device's readings and processes,
their rows as one Arrow table) per sample and per device, against the NVML call floor: the same
pynvml calls (utilization, memory, power, temperature, two clocks, two ECC totals, compute and
graphics processes, per device) made in a bare loop that builds no rows. On the fake NVML
(tests/fakes/nvml) with 8 devices and one fake CUDA process on each, unless `--real` (the host's
NVML). Ticks run back to back through the sampler's own thread (a tiny interval), so the CPU time
per tick is what a 1 Hz sampler pays each second; "% of one core at 1 Hz" is that over one second.
Sides: the floor; the sampler writing nowhere; the sampler writing to a real store (StoreWriter,
kind `samples`, fsync per tick, as `agenttrace run` writes). CPU time is the sampler thread's own
(`time.thread_time`). Medians of alternating reps.

On the fake, every NVML call is a Python callback that re-reads the fake's state (its process
table, devices.json): the floor is far above real NVML's, and the sampler's own share (the
difference) is the figure that carries over. Between ticks the sampler waits on NVML's event set
in slices of 250 ms; that wait is measured apart (CPU per second of waiting): on the fake it polls
the event log every 10 ms, where real NVML blocks in the driver.

Goal (issue 14): well under 1% of one core at 1 Hz on 8 devices.

    python bench/gpu_sampler.py [--quick] [--ticks N] [--reps R] [--devices D] [--real]
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _common import clean_environment, final_json, header, median, parser

REPO = Path(__file__).resolve().parents[1]
TESTS = REPO / "tests"


def floor(nvml: Any, ticks: int) -> float:
    """CPU seconds per tick of the bare pynvml calls the sampler makes (this thread's)."""
    import pynvml as nv

    handles = [nv.nvmlDeviceGetHandleByIndex(d.index) for d in nvml.devices()]

    def one(call: Callable[..., Any], *args: Any) -> None:
        with contextlib.suppress(nv.NVMLError):
            call(*args)

    uncorrected, corrected = nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED, nv.NVML_MEMORY_ERROR_TYPE_CORRECTED
    start = time.thread_time()
    for _ in range(ticks):
        for h in handles:
            one(nv.nvmlDeviceGetUtilizationRates, h)
            one(nv.nvmlDeviceGetMemoryInfo, h)
            one(nv.nvmlDeviceGetPowerUsage, h)
            one(nv.nvmlDeviceGetTemperature, h, nv.NVML_TEMPERATURE_GPU)
            one(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_SM)
            one(nv.nvmlDeviceGetClockInfo, h, nv.NVML_CLOCK_MEM)
            one(nv.nvmlDeviceGetTotalEccErrors, h, uncorrected, nv.NVML_VOLATILE_ECC)
            one(nv.nvmlDeviceGetTotalEccErrors, h, corrected, nv.NVML_VOLATILE_ECC)
            one(nv.nvmlDeviceGetComputeRunningProcesses, h)
            one(nv.nvmlDeviceGetGraphicsRunningProcesses, h)
    return (time.thread_time() - start) / ticks


def sampler(nvml: Any, ticks: int, write: Callable[[Any], None]) -> tuple[float, int]:
    """CPU seconds per tick of the sampler's thread, ticks back to back; and rows per tick."""
    from agenttrace.gpu.sampler import GpuSampler

    s = GpuSampler("bench-gpu", write, interval=1e-9, nvml=nvml, in_run=lambda pid: True).start()
    while s.ticks < ticks and s.running:
        time.sleep(0.01)
    s.stop()
    assert not s.errors and not s.write_failures, (s.errors, s.write_failures)
    return s.cpu_s / s.ticks, s.rows_written // max(1, s.ticks)


def event_wait(nvml: Any, seconds: float) -> float:
    """CPU seconds per second of waiting on the event set in the sampler's slices."""
    from agenttrace.gpu.sampler import EVENT_SLICE_S

    result: list[float] = []

    def wait() -> None:
        with nvml.events() as watch:
            start = time.thread_time()
            end = time.monotonic() + seconds
            while time.monotonic() < end:
                watch.wait(int(EVENT_SLICE_S * 1000))
            result.append((time.thread_time() - start) / seconds)

    thread = threading.Thread(target=wait)
    thread.start()
    thread.join()
    return result[0]


def main() -> None:
    ap = parser(__doc__.split("\n", 1)[0])
    ap.add_argument("--ticks", type=int, default=200)
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--devices", type=int, default=8)
    ap.add_argument("--real", action="store_true", help="the host's NVML, not the fake")
    args = ap.parse_args()
    ticks, reps = (40, 3) if args.quick else (args.ticks, args.reps)
    clean_environment()
    header("GPU sampler CPU time against the NVML call floor", args.quick)
    procs: list[subprocess.Popen[bytes]] = []
    with tempfile.TemporaryDirectory(dir=args.tmp) as tmp:
        if not args.real:
            sys.path.insert(0, str(TESTS))
            from fakes.nvml.activate import activate
            from fakes.nvml.state import STATE_ENV, make_state

            state = make_state(Path(tmp), n_devices=args.devices)
            os.environ[STATE_ENV] = str(state)
            os.environ.pop("CUDA_VISIBLE_DEVICES", None)
            activate()
            fake_cuda = TESTS / "fakes" / "nvml" / "fake_cuda.py"
            for device in range(args.devices):
                proc = subprocess.Popen(
                    [sys.executable, str(fake_cuda), "--device", str(device), "--mem", "1GiB"],
                    stdout=subprocess.PIPE,
                )
                assert proc.stdout is not None
                proc.stdout.readline()  # ready
                procs.append(proc)
        from agenttrace.gpu.nvml import Nvml
        from agenttrace.store import StoreLayout, StoreWriter
        from agenttrace.store.layout import SAMPLES

        try:
            with Nvml.open() as nvml:
                n_devices = len(nvml.devices())
                kind = "real" if args.real else "fake"
                print(f"NVML: {kind}, {n_devices} device(s); {ticks} ticks x {reps} reps")
                writer = StoreWriter(StoreLayout(Path(tmp) / "store"))
                sides: dict[str, Callable[[], float]] = {
                    "NVML call floor (bare pynvml loop)": lambda: floor(nvml, ticks),
                    "sampler, rows built, no write": lambda: sampler(nvml, ticks, lambda t: None)[0],
                    "sampler + StoreWriter (fsync)": lambda: sampler(
                        nvml, ticks, lambda t: writer.append(t, kind=SAMPLES)
                    )[0],
                }
                times: dict[str, list[float]] = {name: [] for name in sides}
                for rep in range(reps):
                    order = list(sides.items()) if rep % 2 == 0 else list(reversed(sides.items()))
                    for name, side in order:
                        times[name].append(side())
                rows = sampler(nvml, 5, lambda t: None)[1]
                waiting = event_wait(nvml, 1.0 if args.quick else 2.0)
                writer.close()
        finally:
            for proc in procs:
                proc.kill()
                proc.wait()
                if proc.stdout is not None:
                    proc.stdout.close()
    base = median(times["NVML call floor (bare pynvml loop)"])
    result: dict[str, Any] = {"bench": "gpu_sampler", "devices": n_devices, "real_nvml": args.real}
    print(f"rows per tick: {rows}")
    print(f"{'side':<38} {'ms/tick':>9} {'ms/device':>10} {'x floor':>8} {'% core @1Hz':>12}")
    for name, values in times.items():
        m = median(values)
        print(f"{name:<38} {m * 1e3:9.3f} {m * 1e3 / n_devices:10.3f} {m / base:8.2f} {m * 100:11.3f}%")
        result[name] = {"ms_per_tick": round(m * 1e3, 4), "x_floor": round(m / base, 3)}
    own = median(times["sampler, rows built, no write"]) - base
    print(
        f"sampler's own share (sampler - floor): {own * 1e3:.3f} ms/tick, {own * 100:.3f}% of a core at 1 Hz"
    )
    how = "real NVML" if args.real else "the fake polls every 10 ms"
    print(f"event-set wait between ticks: {waiting * 100:.3f}% of a core ({how})")
    result["own_ms_per_tick"] = round(own * 1e3, 4)
    result["event_wait_core_pct"] = round(waiting * 100, 4)
    result["rows_per_tick"] = rows
    final_json(result)


if __name__ == "__main__":
    main()
