"""NVML, through `pynvml` (the `nvidia-ml-py` package): devices, per-device readings, the processes
on a device, and critical events (Xid, ECC).

`pynvml` is imported when NVML is first opened, not with this module (importing it costs ~70 ms,
which a run without GPUs must not pay). Every pynvml error comes out as a `GpuError`, except a
reading the device does not support (or the driver does not have), which reads as None; a reading
found unsupported once is not asked for again on that device.
"""

from __future__ import annotations

import contextlib
import ctypes
import threading
from dataclasses import dataclass
from types import ModuleType, TracebackType
from typing import Any, NamedTuple

from ..errors import GpuError


@dataclass(frozen=True)
class Device:
    """One GPU as NVML numbers it (`index`: NVML's order, which `CUDA_VISIBLE_DEVICES` indices follow
    when `CUDA_DEVICE_ORDER=PCI_BUS_ID`)."""

    index: int
    uuid: str
    name: str
    memory_total: int


class GpuProcess(NamedTuple):
    """A process with a context on a device: its pid and the device memory it uses (bytes; None
    where the driver cannot tell, as under Windows WDDM)."""

    pid: int
    used_memory: int | None


@dataclass(frozen=True)
class Reading:
    """One device's state at one moment; None where the device does not support a reading."""

    utilization: float | None  # fraction of time a kernel ran, 0..1
    memory_used: int | None  # bytes
    memory_total: int | None  # bytes
    power_w: float | None
    temperature_c: float | None
    sm_clock_mhz: int | None
    memory_clock_mhz: int | None
    ecc_uncorrected: int | None  # volatile totals (since the driver loaded)
    ecc_corrected: int | None


@dataclass(frozen=True)
class Event:
    """A critical event on a device: an Xid (`kind` "xid", `data` the Xid code) or an uncorrected
    (double-bit) ECC error (`kind` "ecc_uncorrected")."""

    device: int
    uuid: str
    kind: str
    data: int


_pynvml: ModuleType | None = None
_import_lock = threading.Lock()


def _load() -> ModuleType:
    global _pynvml
    if _pynvml is None:
        with _import_lock:
            if _pynvml is None:
                try:
                    import pynvml
                except ImportError as e:  # pragma: no cover - a declared dependency
                    raise GpuError(f"NVML is not available: pynvml cannot be imported ({e})") from None
                _pynvml = pynvml
    return _pynvml


def _text(value: bytes | str) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else value


def _address(handle: Any) -> int | None:
    return ctypes.cast(handle, ctypes.c_void_p).value


class Nvml:
    """An open NVML session. `Nvml.open()`, or `with Nvml.open() as nvml:`; `close()` shuts it down.

    Safe to use from one thread at a time (the sampler's, or a command's)."""

    def __init__(self, pynvml: ModuleType) -> None:
        self._nv = pynvml
        self._closed = False
        self._handles: list[Any] = []
        self._devices: list[Device] = []
        self._unsupported: set[tuple[int, str]] = set()
        self._not_supported = (pynvml.NVML_ERROR_NOT_SUPPORTED, pynvml.NVML_ERROR_FUNCTION_NOT_FOUND)
        try:
            count = pynvml.nvmlDeviceGetCount()
            for index in range(count):
                handle = pynvml.nvmlDeviceGetHandleByIndex(index)
                memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
                self._handles.append(handle)
                self._devices.append(
                    Device(
                        index=index,
                        uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                        name=_text(pynvml.nvmlDeviceGetName(handle)),
                        memory_total=int(memory.total),
                    )
                )
        except pynvml.NVMLError as e:
            self.close()
            raise GpuError(f"NVML cannot list the GPUs: {e}") from None

    @classmethod
    def open(cls) -> Nvml:
        """Load and initialise NVML; `GpuError` where it cannot (no driver, no library)."""
        pynvml = _load()
        try:
            pynvml.nvmlInit()
        except pynvml.NVMLError as e:
            raise GpuError(f"NVML is not available: {e} (no NVIDIA driver here?)") from None
        except OSError as e:  # a library that loads but is not NVML
            raise GpuError(f"NVML is not available: {e} (no NVIDIA driver here?)") from None
        return cls(pynvml)

    def __enter__(self) -> Nvml:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Shut NVML down (once; NVML counts its inits, so other sessions in the process go on)."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(self._nv.NVMLError):
            self._nv.nvmlShutdown()

    # -- devices ---------------------------------------------------------------------------------

    def devices(self) -> list[Device]:
        """The GPUs NVML sees, by index."""
        return list(self._devices)

    def device(self, spec: int | str) -> Device:
        """The device named by an index (`0`, `"0"`), a UUID (`GPU-…`, any case) or a UUID prefix
        that names one device; `GpuError` naming the devices that exist otherwise."""
        text = str(spec).strip()
        if text.isdigit():
            index = int(text)
            if index < len(self._devices):
                return self._devices[index]
        elif text:
            wanted = text.lower()
            exact = [d for d in self._devices if d.uuid.lower() == wanted]
            if exact:
                return exact[0]
            prefixed = [d for d in self._devices if d.uuid.lower().startswith(wanted)]
            if len(prefixed) == 1:
                return prefixed[0]
        here = ", ".join(f"{d.index} ({d.uuid}, {d.name})" for d in self._devices) or "none"
        raise GpuError(f"no GPU {text!r} on this host; the GPUs here are: {here}")

    # -- readings --------------------------------------------------------------------------------

    def _handle(self, index: int) -> Any:
        if not 0 <= index < len(self._handles):
            raise GpuError(f"no GPU {index} on this host ({len(self._handles)} GPUs)")
        return self._handles[index]

    def _read(self, index: int, what: str, call: Any, *args: Any) -> Any:
        """One reading: its value, None where unsupported, GpuError on any other NVML error."""
        if (index, what) in self._unsupported:
            return None
        try:
            return call(self._handles[index], *args)
        except self._nv.NVMLError as e:
            if e.value in self._not_supported:
                self._unsupported.add((index, what))
                return None
            raise GpuError(f"GPU {index}: NVML cannot read its {what}: {e}") from None

    def reading(self, index: int) -> Reading:
        """The device's utilization, memory, power, temperature, clocks and ECC totals now."""
        self._handle(index)
        nv = self._nv
        util = self._read(index, "utilization", nv.nvmlDeviceGetUtilizationRates)
        memory = self._read(index, "memory", nv.nvmlDeviceGetMemoryInfo)
        power = self._read(index, "power", nv.nvmlDeviceGetPowerUsage)
        temperature = self._temperature(index)
        sm_clock = self._read(index, "SM clock", nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_SM)
        mem_clock = self._read(index, "memory clock", nv.nvmlDeviceGetClockInfo, nv.NVML_CLOCK_MEM)
        uncorrected = self._read(
            index,
            "uncorrected ECC errors",
            nv.nvmlDeviceGetTotalEccErrors,
            nv.NVML_MEMORY_ERROR_TYPE_UNCORRECTED,
            nv.NVML_VOLATILE_ECC,
        )
        corrected = self._read(
            index,
            "corrected ECC errors",
            nv.nvmlDeviceGetTotalEccErrors,
            nv.NVML_MEMORY_ERROR_TYPE_CORRECTED,
            nv.NVML_VOLATILE_ECC,
        )
        return Reading(
            utilization=None if util is None else util.gpu / 100.0,
            memory_used=None if memory is None else int(memory.used),
            memory_total=None if memory is None else int(memory.total),
            power_w=None if power is None else power / 1000.0,
            temperature_c=None if temperature is None else float(temperature),
            sm_clock_mhz=sm_clock,
            memory_clock_mhz=mem_clock,
            ecc_uncorrected=uncorrected,
            ecc_corrected=corrected,
        )

    def _temperature(self, index: int) -> Any:
        nv = self._nv
        if (index, "temperature") not in self._unsupported:
            value = self._read(index, "temperature", nv.nvmlDeviceGetTemperature, nv.NVML_TEMPERATURE_GPU)
            if value is not None:
                return value
        # drivers that dropped the deprecated call have only nvmlDeviceGetTemperatureV
        return self._read(index, "temperature (V)", nv.nvmlDeviceGetTemperatureV, nv.NVML_TEMPERATURE_GPU)

    def processes(self, index: int) -> list[GpuProcess]:
        """The processes with a compute or graphics context on the device, by pid (a process with
        both counts once, with the larger memory figure)."""
        self._handle(index)
        nv = self._nv
        found: dict[int, int | None] = {}
        for what, call in (
            ("compute processes", nv.nvmlDeviceGetComputeRunningProcesses),
            ("graphics processes", nv.nvmlDeviceGetGraphicsRunningProcesses),
        ):
            try:
                listed = self._read(index, what, call)
            except GpuError:
                raise
            except nv.NVMLLibraryMismatchError:  # a driver older than pynvml's _v3: ask for _v2
                v2 = nv.nvmlDeviceGetComputeRunningProcesses_v2
                if what.startswith("graphics"):
                    v2 = nv.nvmlDeviceGetGraphicsRunningProcesses_v2
                listed = self._read(index, what, v2)
            for proc in listed or ():
                memory = proc.usedGpuMemory
                before = found.get(proc.pid)
                if proc.pid not in found or (memory is not None and (before is None or memory > before)):
                    found[proc.pid] = None if memory is None else int(memory)
        return [GpuProcess(pid, memory) for pid, memory in sorted(found.items())]

    # -- events ----------------------------------------------------------------------------------

    def events(self, indices: list[int] | None = None) -> EventWatch:
        """An event set with every listed device (all by default) registered for the critical
        events it supports (Xid, uncorrected ECC). Devices that support none are left out
        (`EventWatch.devices` lists those in)."""
        return EventWatch(self, list(range(len(self._devices))) if indices is None else indices)


class EventWatch:
    """Critical events of some devices; `wait(timeout_ms)` blocks until one or the timeout."""

    def __init__(self, nvml: Nvml, indices: list[int]) -> None:
        nv = nvml._nv
        self._nvml = nvml
        self._by_address: dict[int | None, Device] = {}
        self.devices: list[int] = []
        wanted = {
            nv.nvmlEventTypeXidCriticalError: "xid",
            nv.nvmlEventTypeDoubleBitEccError: "ecc_uncorrected",
        }  # corrected (single-bit) errors come as storms: their counter is sampled instead
        self._kinds = wanted
        mask_wanted = 0
        for bit in wanted:
            mask_wanted |= bit
        try:
            self._set: Any = nv.nvmlEventSetCreate()
        except nv.NVMLError as e:
            raise GpuError(f"NVML cannot watch for GPU events: {e}") from None
        for index in indices:
            handle = nvml._handle(index)
            try:
                mask = nv.nvmlDeviceGetSupportedEventTypes(handle) & mask_wanted
                if mask:
                    nv.nvmlDeviceRegisterEvents(handle, mask, self._set)
            except nv.NVMLError:
                continue  # events not supported on this device (or this driver): sampled counters only
            if mask:
                self.devices.append(index)
                self._by_address[_address(handle)] = nvml._devices[index]

    def wait(self, timeout_ms: int) -> Event | None:
        """The next event, or None after `timeout_ms` without one. `GpuError` if NVML fails."""
        nv = self._nvml._nv
        try:
            data = nv.nvmlEventSetWait_v2(self._set, max(0, int(timeout_ms)))
        except nv.NVMLError as e:
            if e.value == nv.NVML_ERROR_TIMEOUT:
                return None
            raise GpuError(f"NVML event wait failed: {e}") from None
        device = self._by_address.get(_address(data.device))
        if device is None:
            try:
                device = self._nvml._devices[nv.nvmlDeviceGetIndex(data.device)]
            except (nv.NVMLError, IndexError):
                device = Device(-1, "", "", 0)
        kind = self._kinds.get(int(data.eventType), f"event_0x{int(data.eventType):x}")
        return Event(device=device.index, uuid=device.uuid, kind=kind, data=int(data.eventData))

    def close(self) -> None:
        nv = self._nvml._nv
        if self._set is None:
            return
        with contextlib.suppress(nv.NVMLError):
            nv.nvmlEventSetFree(self._set)
        self._set = None

    def __enter__(self) -> EventWatch:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
