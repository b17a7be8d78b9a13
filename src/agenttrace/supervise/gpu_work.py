"""The GPU side of one `agenttrace run`: the lease taken before the agent starts (`--gpu`), the
NVML sampler while it runs, and what the run records of both.

    gpu = GpuWork(run_id, store, request="0", wait_s=None, interval=1.0, tell=print)
    gpu.acquire()                  # before the run's record starts; GpuError: no NVML, no such
                                   # device, or the device is held and the wait ran out
    env |= gpu.env()               # CUDA_VISIBLE_DEVICES / NVIDIA_VISIBLE_DEVICES: the lease only
    gpu.start(tracer, root, sink.add_samples, forward, in_run)
    gpu.check()                    # now and then while the agent runs: is the lease still ours?
    gpu.stop(root)                 # the agent's tree is done: last sample, lease let go

Every device NVML sees is sampled, leased or not: a process of the run on a device it did not
lease, and a process outside the run on a leased one, are what the `gpu_guard` gate looks for.
The lease is recorded as a span (`agenttrace.span.type` = `gpu_lease`) from the moment it was
held to the moment it was let go, with the devices and, if it was lost meanwhile (its lock file
removed or rewritten: the agent runs as the same user), why and when.

Where there is no NVIDIA driver and no `--gpu`, nothing is loaded (pynvml costs ~70 ms): the root
span says `agenttrace.gpu.sampling` = `off: no NVIDIA driver`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from opentelemetry import trace
from opentelemetry.trace import Span, Status, StatusCode

from .. import constants
from . import procfs

if TYPE_CHECKING:
    import pyarrow as pa

    from ..gpu.lease import Holder, Lease
    from ..gpu.nvml import Nvml
    from ..gpu.sampler import GpuSampler

SPAN_TYPE = "gpu_lease"
LEASE = "agenttrace.gpu.lease"
SAMPLING = "agenttrace.gpu.sampling"
CHECK_EVERY_S = 1.0
"""How often the lease is checked while the agent runs (and once more when it is let go)."""
READY_WAIT_S = 2.0
"""With a lease, how long the agent's start waits for the sampler's first sample and event set."""
DRIVER_SIGNS = ("/proc/driver/nvidia/version", "/dev/nvidiactl")


def driver_present() -> bool:
    """An NVIDIA driver is loaded here (or NVML is already loaded in this process): worth sampling.
    Read from the kernel's files, not from anything the agent could set."""
    loaded = sys.modules.get("pynvml")
    if loaded is not None and getattr(loaded, "nvmlLib", None) is not None:
        return True
    return any(os.path.exists(sign) for sign in DRIVER_SIGNS)


class GpuWork:
    def __init__(
        self,
        run_id: str,
        store: Path,
        *,
        request: str | None,
        wait_s: float | None,
        interval: float,
        tell: Callable[[str], None],
    ) -> None:
        """`request`: the `--gpu` value (None: no lease); `wait_s`: how long to wait for held
        devices (None: as long as it takes, 0: not at all); `interval`: seconds between samples."""
        self.run_id = run_id
        self.store = store
        self.request = request
        self.wait_s = wait_s
        self.interval = interval
        self._tell = tell
        self.lease: Lease | None = None
        self._nvml: Nvml | None = None
        self._sampler: GpuSampler | None = None
        self._span: Span | None = None
        self._lost: str | None = None
        self._next_check = 0.0

    # -- before the run starts ------------------------------------------------------------------
    def acquire(self) -> None:
        """Take the lease `--gpu` asked for (nothing without one). Raises GpuError or ConfigError."""
        if self.request is None:
            return
        from ..gpu.lease import acquire, parse_request
        from ..gpu.nvml import Nvml

        request = parse_request(self.request)  # a bad value is refused before NVML is loaded
        nvml = Nvml.open()
        try:
            self.lease = acquire(
                request,
                nvml.devices(),
                run_id=self.run_id,
                store=None,  # the holder record is readable by every user (the agent too): no store path
                wait_s=float("inf") if self.wait_s is None else self.wait_s,
                on_wait=self._waiting,
            )
        except BaseException:
            nvml.close()
            raise
        self._nvml = nvml
        devices = ", ".join(f"{d.index} ({d.uuid})" for d in self.lease.devices)
        waited = f" after waiting {self.lease.waited_s:.1f} s" if self.lease.waited_s >= 1 else ""
        self._tell(f"GPU lease: {devices}{waited}")

    def _waiting(self, holders: list[Holder]) -> None:
        for holder in holders:
            self._tell(f"waiting for GPU {holder.index} ({holder.uuid}): leased by {holder.describe()}")

    def env(self) -> dict[str, str]:
        """The agent's view of the GPUs: its lease only (nothing changes without one)."""
        return self.lease.env() if self.lease is not None else {}

    # -- while the agent runs -------------------------------------------------------------------
    def start(
        self,
        tracer: trace.Tracer,
        root: Span,
        write: Callable[[pa.Table], object],
        forward: Callable[[pa.Table], None] | None,
        in_run: Callable[[int], bool],
    ) -> None:
        """Record the lease under the run's root span and start sampling (in a thread of its own:
        this returns at once). Never raises."""
        if self.lease is not None:
            record = self.lease.record()
            self._span = tracer.start_span(
                "gpu lease",
                context=trace.set_span_in_context(root),
                start_time=int(self.lease.acquired_at * 1e9),
                attributes={
                    constants.RUN_ID: self.run_id,
                    constants.SPAN_TYPE: SPAN_TYPE,
                    f"{LEASE}.request": str(self.request),
                    f"{LEASE}.devices": [d.uuid for d in self.lease.devices],
                    f"{LEASE}.indices": [d.index for d in self.lease.devices],
                    f"{LEASE}.waited_s": round(self.lease.waited_s, 3),
                    f"{LEASE}.lock_dir": str(record["lock_dir"]),
                },
            )
        if self._nvml is None and not driver_present():
            root.set_attribute(SAMPLING, "off: no NVIDIA driver")
            return
        try:
            from ..gpu.sampler import GpuSampler

            def stored(table: pa.Table) -> None:
                write(table)
                if forward is not None:
                    forward(table)

            self._sampler = GpuSampler(
                self.run_id, stored, interval=self.interval, in_run=in_run, nvml=self._nvml
            ).start()
            if self.lease is not None:  # the leased devices are watched before the agent starts
                self._sampler.ready.wait(READY_WAIT_S)
        except Exception as exc:  # sampling is evidence, not a reason to stop the run
            root.set_attribute(SAMPLING, f"failed: {exc}")

    def check(self) -> None:
        """Is the lease still ours? Its first loss is recorded (an event on the lease span, with
        why) the moment it is seen. Cheap to call often: it looks once a second. Never raises."""
        if self.lease is None or self._lost is not None:
            return
        now = time.monotonic()
        if now < self._next_check:
            return
        self._next_check = now + CHECK_EVERY_S
        try:
            lost = self.lease.check()
        except Exception as exc:
            lost = f"the lease could not be checked: {exc}"
        if lost is not None:
            self._record_loss(lost)

    def _record_loss(self, why: str) -> None:
        self._lost = why
        if self._span is not None:
            self._span.add_event(f"{LEASE}.lost", {f"{LEASE}.lost": why})
            self._span.set_attribute(f"{LEASE}.lost", why)
            self._span.set_status(Status(StatusCode.ERROR, f"GPU lease lost: {why}"))

    # -- after the agent's tree ended ----------------------------------------------------------
    def stop(self, root: Span | None) -> None:
        """Take the last sample, let the lease go and end its span, and say on the root span how
        sampling went (`root` None: the run never started). Never raises."""
        sampler, self._sampler = self._sampler, None
        if sampler is not None and root is not None:
            sampler.stop()
            if sampler.unavailable:
                root.set_attribute(SAMPLING, f"unavailable: {sampler.unavailable}")
            else:
                root.set_attribute(SAMPLING, "nvml")
                root.set_attribute(f"{SAMPLING}.interval_s", self.interval)
            if sampler.errors:
                root.set_attribute(f"{SAMPLING}.errors", list(sampler.errors))
        if self.lease is not None:
            lost = self.lease.release()
            if lost is not None and self._lost is None:
                self._record_loss(lost)
            if self._span is not None:
                self._span.end(end_time=int((self.lease.released_at or time.time()) * 1e9))
                self._span = None
        if self._nvml is not None:
            with contextlib.suppress(Exception):
                self._nvml.close()
            self._nvml = None


def belongs_to(pid: int, known: Callable[[int], bool], root_pid: int, supervisor_pid: int) -> bool:
    """Is `pid` part of the run's tree: known to the watcher, or descended from the agent's
    process or from the supervisor (which reaps the run's orphans), as /proc says now?"""
    if known(pid):
        return True
    seen: set[int] = set()
    current = pid
    while current > 1 and current not in seen and len(seen) < 64:
        seen.add(current)
        if current in (root_pid, supervisor_pid):
            return True
        st = procfs.stat(current)
        if st is None:
            return False
        current = st.ppid
    return False
