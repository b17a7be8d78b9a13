"""The NVML sampler of `agenttrace run`: every device and every process on it, at an interval, as
rows of the store's samples (`gpu.samples`), from a thread of its own.

Each tick reads every device NVML sees (not only the run's lease: a run's process on a device it
did not lease is what the `gpu_guard` gate looks for) and writes one table: per device its
utilization, memory used and total, power, temperature, clocks and ECC totals; per process on it
its device memory, command line, parent, start time and whether it belongs to the run (the
`in_run` callback, which the supervisor answers from its process tree). Between ticks the thread
waits on NVML's event set, so an Xid or an uncorrected ECC error is written as a point the moment
NVML reports it.

The sampler never raises into the supervisor and never blocks it: `start()` returns at once (NVML,
and with it pynvml, is loaded in the thread: a run without GPUs does not pay for it); NVML that
cannot be opened leaves the reason in `unavailable`; NVML errors during the run are kept once each
in `errors` and the devices that still answer go on being sampled; a failing `write` is counted in
`write_failures`; `stop()` waits a bounded time.
"""

from __future__ import annotations

import logging
import shlex
import threading
import time
from collections.abc import Callable

import pyarrow as pa

from ..capture.redact import redact_argv
from ..errors import GpuError
from ..supervise import procfs
from . import samples as S
from .nvml import Device, EventWatch, Nvml

log = logging.getLogger(__name__)

DEFAULT_INTERVAL_S = 1.0
EVENT_SLICE_S = 0.25
"""Longest single wait on NVML's event set (it cannot be interrupted): how late `stop()` can be
noticed, besides a tick in progress."""
STOP_TIMEOUT_S = 5.0
MAX_ERRORS = 20
"""Distinct errors kept in `errors` (further ones are counted in `errors_dropped`)."""
_COMMAND_CACHE = 4096


def _iso(ns: int) -> str:
    seconds, rest = divmod(ns, 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{rest // 1000:06d}Z"


class GpuSampler:
    """Samples NVML into `write(table)` (one `pa.Table` of `SAMPLE_SCHEMA` per tick, and one per
    critical event) until `stop()`.

    `in_run(pid)` says whether a process on a device belongs to the run; `nvml` an open session to
    use (the sampler then leaves it open), else the thread opens and closes its own."""

    def __init__(
        self,
        run_id: str,
        write: Callable[[pa.Table], None],
        *,
        interval: float = DEFAULT_INTERVAL_S,
        in_run: Callable[[int], bool] | None = None,
        nvml: Nvml | None = None,
    ) -> None:
        if not interval > 0:
            raise ValueError(f"GPU sampling interval must be positive, not {interval!r}")
        self.run_id = run_id
        self.interval = float(interval)
        self._write = write
        self._in_run = in_run
        self._nvml = nvml
        self._stop = threading.Event()
        self._stop_asked = float("inf")
        self.ready = threading.Event()
        """Set once NVML's event set is listening and the first sample is taken (or sampling gave up)."""
        self._thread = threading.Thread(target=self._main, name="agenttrace-gpu-sampler", daemon=True)
        self._started = False
        self._commands: dict[tuple[int, int], tuple[int, str]] = {}
        """(pid, start ns) -> (parent pid, command line): a process's argv is read once."""
        self._device_attrs: dict[int, list[tuple[str, str]]] = {}
        self.start_ns = time.time_ns()
        self.unavailable: str | None = None
        """Why NVML could not be opened (then nothing was sampled)."""
        self.devices: list[Device] = []
        self.event_devices: list[int] = []
        """Indices of the devices registered for critical events."""
        self.errors: list[str] = []
        """NVML (and `in_run`) errors met during the run, each once, in order."""
        self.errors_dropped = 0
        self.ticks = 0
        self.rows_written = 0
        self.events = 0
        self.write_failures = 0
        self.cpu_s = 0.0
        """CPU time of the sampler's thread (seconds), once it has stopped."""

    # -- control ---------------------------------------------------------------------------------

    def start(self) -> GpuSampler:
        """Start the thread; returns at once."""
        if not self._started:
            self._started = True
            self._thread.start()
        return self

    def stop(self, timeout: float = STOP_TIMEOUT_S) -> None:
        """Take one last sample and stop (waiting at most `timeout` seconds; never raises)."""
        self._stop_asked = time.monotonic()
        self._stop.set()
        if self._started:
            self._thread.join(timeout)
            if self._thread.is_alive():
                self._error(f"the GPU sampler did not stop within {timeout:g} s")

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> GpuSampler:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the thread ------------------------------------------------------------------------------

    def _main(self) -> None:
        try:
            self._loop()
        except Exception as exc:  # never into the supervisor; recorded for its root span
            log.debug("GPU sampler failed", exc_info=True)
            self._error(f"the GPU sampler stopped: {type(exc).__name__}: {exc}")
        finally:
            self.ready.set()
            self.cpu_s = time.thread_time()

    def _loop(self) -> None:
        nvml = self._nvml
        try:
            if nvml is None:
                nvml = Nvml.open()
        except GpuError as exc:
            self.unavailable = str(exc)
            return
        watch: EventWatch | None = None
        try:
            self.devices = nvml.devices()
            try:
                watch = nvml.events()
                self.event_devices = list(watch.devices)
                if not watch.devices:
                    watch.close()
                    watch = None
            except GpuError as exc:
                self._error(str(exc))
            next_tick = time.monotonic()
            while True:
                began = time.monotonic()
                self._tick(nvml)
                self.ready.set()
                if self._stop.is_set() and self._stop_asked <= began:
                    return  # this sample began after stop() was asked: the last one
                next_tick += self.interval
                now = time.monotonic()
                if next_tick <= now:  # a tick overran: the next one is an interval from now
                    next_tick = now + self.interval
                watch = self._wait(watch, next_tick)
        finally:
            if watch is not None:
                watch.close()
            if self._nvml is None:
                nvml.close()

    def _wait(self, watch: EventWatch | None, until: float) -> EventWatch | None:
        """Until the next tick (or `stop()`), recording critical events as they come."""
        while not self._stop.is_set():
            remaining = until - time.monotonic()
            if remaining <= 0:
                break
            if watch is None:
                self._stop.wait(remaining)
                continue
            try:
                event = watch.wait(int(min(remaining, EVENT_SLICE_S) * 1000) + 1)
            except GpuError as exc:
                self._error(f"{exc}; no more GPU events are watched")
                watch.close()
                watch = None
                continue
            if event is not None:
                self._event(event.device, event.uuid, event.kind, event.data)
        return watch

    def _event(self, index: int, uuid: str, kind: str, data: int) -> None:
        rows = S.SampleRows(self.run_id, self.start_ns)
        attrs = [*self._attrs_of(index, uuid)]
        if kind == "xid":
            rows.add(S.XID, time.time_ns(), data, attrs)
        else:
            rows.add(S.ECC_EVENT, time.time_ns(), 1, [*attrs, ("error.type", "uncorrected")])
        self.events += 1
        self._emit(rows)

    def _attrs_of(self, index: int, uuid: str = "") -> list[tuple[str, str]]:
        attrs = self._device_attrs.get(index)
        if attrs is None:
            device = next((d for d in self.devices if d.index == index), None)
            attrs = [
                ("hw.id", device.uuid if device else uuid),
                ("hw.gpu.index", str(index)),
                ("hw.type", "gpu"),
                ("hw.name", device.name if device else ""),
            ]
            self._device_attrs[index] = attrs
        return attrs

    def _tick(self, nvml: Nvml) -> None:
        now = time.time_ns()
        rows = S.SampleRows(self.run_id, self.start_ns)
        seen: set[tuple[int, int]] = set()
        for device in self.devices:
            try:
                reading = nvml.reading(device.index)
                procs = nvml.processes(device.index)
            except GpuError as exc:
                self._error(str(exc))
                continue
            attrs = self._attrs_of(device.index)
            for metric, value in (
                (S.UTILIZATION, reading.utilization),
                (S.MEMORY_USAGE, reading.memory_used),
                (S.MEMORY_LIMIT, reading.memory_total),
                (S.POWER, reading.power_w),
                (S.TEMPERATURE, reading.temperature_c),
                (S.SM_CLOCK, reading.sm_clock_mhz),
                (S.MEMORY_CLOCK, reading.memory_clock_mhz),
            ):
                if value is not None:
                    rows.add(metric, now, value, attrs)
            if reading.ecc_uncorrected is not None:
                rows.add(S.ERRORS, now, reading.ecc_uncorrected, [*attrs, ("error.type", "uncorrected")])
            if reading.ecc_corrected is not None:
                rows.add(S.ERRORS, now, reading.ecc_corrected, [*attrs, ("error.type", "corrected")])
            for proc in procs:
                rows.add(
                    S.PROCESS_MEMORY, now, proc.used_memory, [*attrs, *self._process_attrs(proc.pid, seen)]
                )
        self._forget(seen)
        self.ticks += 1
        self._emit(rows)

    def _process_attrs(self, pid: int, seen: set[tuple[int, int]]) -> list[tuple[str, str]]:
        attrs = [("process.pid", str(pid))]
        stat = procfs.stat(pid)
        if stat is not None:
            key = (pid, stat.start_ns)
            seen.add(key)
            known = self._commands.get(key)
            if known is None:
                argv = procfs.cmdline(pid)
                known = (stat.ppid, shlex.join(redact_argv(argv)) if argv else "")
                if argv and len(self._commands) < _COMMAND_CACHE:  # none yet: mid-exec, read it again
                    self._commands[key] = known
            attrs.append(("process.parent_pid", str(known[0])))
            if known[1]:
                attrs.append(("process.command_line", known[1]))
            attrs.append(("process.creation.time", _iso(stat.start_ns)))
        # else: a pid NVML lists that /proc does not show (another PID namespace, or gone)
        if self._in_run is not None:
            try:
                attrs.append((S.IN_RUN, "true" if self._in_run(pid) else "false"))
            except Exception as exc:
                self._error(f"cannot tell whether GPU process {pid} is in the run: {exc}")
        return attrs

    def _forget(self, seen: set[tuple[int, int]]) -> None:
        if len(self._commands) > len(seen):
            for key in [k for k in self._commands if k not in seen]:
                del self._commands[key]

    def _emit(self, rows: S.SampleRows) -> None:
        if not len(rows):
            return
        try:
            table = rows.table()
            self._write(table)
        except Exception as exc:
            self.write_failures += 1
            if self.write_failures == 1:
                log.debug("GPU samples not written", exc_info=True)
                self._error(f"GPU samples could not be written: {type(exc).__name__}: {exc}")
            return
        self.rows_written += table.num_rows

    def _error(self, message: str) -> None:
        if message in self.errors:
            return
        if len(self.errors) >= MAX_ERRORS:
            self.errors_dropped += 1
            return
        self.errors.append(message)


__all__ = ["DEFAULT_INTERVAL_S", "GpuSampler"]
