"""A stand-in for `libnvidia-ml.so.1`: an object whose attributes are ctypes callbacks with NVML's C
signatures, put in `pynvml.nvmlLib` (activate.py) so that the real pynvml does all its marshalling.

Everything the devices show comes from the state directory (state.py), re-read on each call. Struct
layouts follow nvml.h; a symbol this object lacks fails in pynvml as a missing symbol does
(NVMLError_FunctionNotFound). Handles are fixed fake addresses, mapped back on each call.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import select
import sys
import threading
import time
import traceback
from collections.abc import Callable
from ctypes import POINTER, Structure, c_char, c_char_p, c_int, c_uint, c_ulonglong, c_void_p
from pathlib import Path
from typing import Any

from fakes.nvml import state as st

# nvmlReturn_t
SUCCESS = 0
ERROR_UNINITIALIZED = 1
ERROR_INVALID_ARGUMENT = 2
ERROR_NOT_SUPPORTED = 3
ERROR_NOT_FOUND = 6
ERROR_INSUFFICIENT_SIZE = 7
ERROR_DRIVER_NOT_LOADED = 9
ERROR_TIMEOUT = 10
ERROR_ARGUMENT_VERSION_MISMATCH = 25
ERROR_UNKNOWN = 999
_ERROR_STRINGS = {
    0: b"Success",
    1: b"Uninitialized",
    2: b"Invalid Argument",
    3: b"Not Supported",
    4: b"Insufficient Permissions",
    5: b"Already Initialized",
    6: b"Not Found",
    7: b"Insufficient Size",
    8: b"Insufficient External Power",
    9: b"Driver Not Loaded",
    10: b"Timeout",
    11: b"Interrupt Request Issue",
    12: b"NVML Shared Library Not Found",
    13: b"Function Not Found",
    25: b"Argument version mismatch",
    999: b"Unknown Error",
}

EVENT_SINGLE_BIT_ECC = 0x1
EVENT_DOUBLE_BIT_ECC = 0x2
EVENT_PSTATE = 0x4
EVENT_XID = 0x8
EVENT_CLOCK = 0x10
DRIVER_VERSION = b"570.133.20"
NVML_VERSION = b"12.570.133.20"
_DEVICE_BASE = 0x4E564D4C0000  # "NVML": device i's handle is _DEVICE_BASE + 0x100 * (i + 1)
_EVENT_SET_BASE = 0x4556454E0000  # "EVEN"
_HGX_BUS = [0x18, 0x2A, 0x3A, 0x5D, 0x9A, 0xAB, 0xBA, 0xDB]  # an 8-GPU HGX board's PCI buses
_CLOCKS = {0: (345, 1980), 1: (345, 1980), 2: (2619, 2619), 3: (765, 1755)}  # graphics, SM, mem, video MHz
_LIBC = ctypes.CDLL(None, use_errno=True)
_IN_MODIFY, _IN_CREATE, _IN_MOVED_TO = 0x2, 0x100, 0x80


class Memory(Structure):  # nvmlMemory_t
    _fields_ = [("total", c_ulonglong), ("free", c_ulonglong), ("used", c_ulonglong)]


class MemoryV2(Structure):  # nvmlMemory_v2_t
    _fields_ = [
        ("version", c_uint),
        ("total", c_ulonglong),
        ("reserved", c_ulonglong),
        ("free", c_ulonglong),
        ("used", c_ulonglong),
    ]


MEMORY_V2 = ctypes.sizeof(MemoryV2) | (2 << 24)


class Utilization(Structure):  # nvmlUtilization_t
    _fields_ = [("gpu", c_uint), ("memory", c_uint)]


class ProcessInfo(Structure):  # nvmlProcessInfo_t (v2 and v3)
    _fields_ = [
        ("pid", c_uint),
        ("usedGpuMemory", c_ulonglong),
        ("gpuInstanceId", c_uint),
        ("computeInstanceId", c_uint),
    ]


class PciInfo(Structure):  # nvmlPciInfo_t
    _fields_ = [
        ("busIdLegacy", c_char * 16),
        ("domain", c_uint),
        ("bus", c_uint),
        ("device", c_uint),
        ("pciDeviceId", c_uint),
        ("pciSubSystemId", c_uint),
        ("busId", c_char * 32),
    ]


class TemperatureV1(Structure):  # nvmlTemperature_v1_t
    _fields_ = [("version", c_uint), ("sensorType", c_uint), ("temperature", c_int)]


TEMPERATURE_V1 = ctypes.sizeof(TemperatureV1) | (1 << 24)


class EventData(Structure):  # nvmlEventData_t
    _fields_ = [
        ("device", c_void_p),
        ("eventType", c_ulonglong),
        ("eventData", c_ulonglong),
        ("gpuInstanceId", c_uint),
        ("computeInstanceId", c_uint),
    ]


class _NvmlError(Exception):
    def __init__(self, code: int) -> None:
        self.code = code


def _c(*argtypes: Any) -> Callable[[Callable[..., int]], Callable[..., int]]:
    """Marks a method as the NVML function of the same name with these C argument types."""

    def mark(method: Callable[..., int]) -> Callable[..., int]:
        method.nvml_argtypes = argtypes  # type: ignore[attr-defined]
        return method

    return mark


class _EventSet:
    """An event set: what it listens to, how far it has read the log, and an inotify watch on the state
    directory, so that a wait sleeps in the kernel as the driver's does (no polling, no CPU)."""

    def __init__(self, state: Path) -> None:
        self.offset = 0  # the next event to look at, as an index into the event log
        self.registered: dict[int, tuple[int, int]] = {}  # device index -> (event mask, log index since)
        self.inotify = _LIBC.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        mask = _IN_MODIFY | _IN_CREATE | _IN_MOVED_TO
        if self.inotify < 0 or _LIBC.inotify_add_watch(self.inotify, os.fsencode(state), mask) < 0:
            raise OSError(ctypes.get_errno(), "inotify")

    def sleep(self, seconds: float) -> None:
        """Until the state directory changes (the watch was set before the log was read: no lost wake-up)."""
        select.select([self.inotify], [], [], seconds)
        with contextlib.suppress(BlockingIOError):
            while os.read(self.inotify, 4096):
                pass

    def close(self) -> None:
        os.close(self.inotify)


class FakeNvml:
    """The fake library. One per process (pynvml caches the function pointers it hands out)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._refcount = 0
        self._state: Path | None = None
        self._devices: list[dict[str, Any]] = []
        self._devices_key: tuple[int, int] | None = None
        self._procs: st.ProcessTable | None = None
        self._events: list[dict[str, Any]] = []
        self._events_read = 0  # bytes of events.jsonl parsed into _events
        self._event_sets: dict[int, _EventSet] = {}
        self._next_event_set = 0
        self._error_strings = {
            code: ctypes.create_string_buffer(text) for code, text in _ERROR_STRINGS.items()
        }
        for name in dir(type(self)):
            method = getattr(self, name)
            if hasattr(method, "nvml_argtypes"):
                setattr(self, name, ctypes.CFUNCTYPE(c_int, *method.nvml_argtypes)(self._guarded(method)))
        # const char *nvmlErrorString(nvmlReturn_t): a pointer to a static string, readable without init
        self.nvmlErrorString = ctypes.CFUNCTYPE(c_void_p, c_int)(self._error_string)

    def _guarded(self, method: Callable[..., int]) -> Callable[..., int]:
        """NVML's rules for every call: not before init; an error is a return code, never an exception."""

        def call(*args: Any) -> int:
            try:
                if method.__name__ not in ("nvmlInit_v2", "nvmlInitWithFlags") and not self._refcount:
                    return ERROR_UNINITIALIZED
                return method(*args)
            except _NvmlError as error:
                return error.code
            except Exception:
                traceback.print_exc(file=sys.stderr)  # a bug of the fake, not an NVML answer
                return ERROR_UNKNOWN

        return call

    def _error_string(self, code: int) -> int | None:
        buffer = self._error_strings.get(code, self._error_strings[ERROR_UNKNOWN])
        return ctypes.addressof(buffer)

    # --- state -------------------------------------------------------------------------------------

    def _device(self, handle: int | None) -> tuple[int, dict[str, Any]]:
        devices = self._read_devices()
        offset = (handle or 0) - _DEVICE_BASE
        index, rest = divmod(offset, 0x100)
        if rest or not 1 <= index <= len(devices):
            raise _NvmlError(ERROR_INVALID_ARGUMENT)
        return index - 1, devices[index - 1]

    def _read_devices(self) -> list[dict[str, Any]]:
        assert self._state is not None
        stat = (self._state / "devices.json").stat()
        key = (stat.st_mtime_ns, stat.st_ino)
        with self._lock:
            if key != self._devices_key:
                self._devices, self._devices_key = st.read_devices(self._state), key
            return self._devices

    def _live(self) -> list[dict[str, Any]]:
        assert self._procs is not None
        with self._lock:
            return self._procs.live()

    def _read_events(self) -> list[dict[str, Any]]:
        """The event log so far, parsed incrementally (complete lines only)."""
        assert self._state is not None
        with self._lock:
            path = self._state / "events.jsonl"
            with contextlib.suppress(FileNotFoundError):
                if path.stat().st_size == self._events_read:  # nothing new: the common case
                    return self._events
            if not path.exists():
                return self._events
            with open(path, "rb") as file:
                file.seek(self._events_read)
                data = file.read()
            complete = data[: data.rfind(b"\n") + 1]
            self._events.extend(json.loads(line) for line in complete.splitlines() if line.strip())
            self._events_read += len(complete)
            return self._events

    # --- init, system --------------------------------------------------------------------------------

    @_c()
    def nvmlInit_v2(self) -> int:
        return self._init()

    @_c(c_uint)
    def nvmlInitWithFlags(self, flags: int) -> int:
        return self._init()

    def _init(self) -> int:
        directory = os.environ.get(st.STATE_ENV)
        if not directory or not (Path(directory) / "devices.json").is_file():
            return ERROR_DRIVER_NOT_LOADED
        with self._lock:
            if self._state != Path(directory):
                self._state, self._devices_key = Path(directory), None
                self._procs = st.ProcessTable(self._state)
                self._events, self._events_read = [], 0
            self._refcount += 1
        return SUCCESS

    @_c()
    def nvmlShutdown(self) -> int:
        with self._lock:
            self._refcount -= 1
            if not self._refcount:
                for event_set in self._event_sets.values():
                    event_set.close()
                self._event_sets.clear()
        return SUCCESS

    @_c(c_void_p, c_uint)
    def nvmlSystemGetDriverVersion(self, buffer: int | None, length: int) -> int:
        return _put_string(buffer, length, DRIVER_VERSION)

    @_c(c_void_p, c_uint)
    def nvmlSystemGetNVMLVersion(self, buffer: int | None, length: int) -> int:
        return _put_string(buffer, length, NVML_VERSION)

    # --- devices ---------------------------------------------------------------------------------

    @_c(POINTER(c_uint))
    def nvmlDeviceGetCount_v2(self, count: Any) -> int:
        _require(count)
        count[0] = len(self._read_devices())
        return SUCCESS

    @_c(c_uint, c_void_p)
    def nvmlDeviceGetHandleByIndex_v2(self, index: int, out: int | None) -> int:
        _require(out)
        if index >= len(self._read_devices()):
            return ERROR_INVALID_ARGUMENT
        c_void_p.from_address(out).value = _DEVICE_BASE + 0x100 * (index + 1)  # type: ignore[arg-type]
        return SUCCESS

    @_c(c_char_p, c_void_p)
    def nvmlDeviceGetHandleByUUID(self, uuid: bytes | None, out: int | None) -> int:
        _require(uuid, out)
        for index, device in enumerate(self._read_devices()):
            if device["uuid"].encode() == uuid:
                c_void_p.from_address(out).value = _DEVICE_BASE + 0x100 * (index + 1)  # type: ignore[arg-type]
                return SUCCESS
        return ERROR_NOT_FOUND

    @_c(c_void_p, POINTER(c_uint))
    def nvmlDeviceGetIndex(self, handle: int | None, out: Any) -> int:
        _require(out)
        out[0] = self._device(handle)[0]
        return SUCCESS

    @_c(c_void_p, c_void_p, c_uint)
    def nvmlDeviceGetUUID(self, handle: int | None, buffer: int | None, length: int) -> int:
        return _put_string(buffer, length, self._device(handle)[1]["uuid"].encode())

    @_c(c_void_p, c_void_p, c_uint)
    def nvmlDeviceGetName(self, handle: int | None, buffer: int | None, length: int) -> int:
        return _put_string(buffer, length, self._device(handle)[1]["name"].encode())

    @_c(c_void_p, c_void_p)
    def nvmlDeviceGetPciInfo_v3(self, handle: int | None, out: int | None) -> int:
        _require(out)
        index = self._device(handle)[0]
        bus = _HGX_BUS[index] if index < len(_HGX_BUS) else 0xE0 + index
        pci = PciInfo.from_address(out)  # type: ignore[arg-type]
        pci.busIdLegacy = f"0000:{bus:02X}:00.0".encode()
        pci.busId = f"00000000:{bus:02X}:00.0".encode()
        pci.domain, pci.bus, pci.device = 0, bus, 0
        pci.pciDeviceId, pci.pciSubSystemId = 0x233510DE, 0x18BE10DE
        return SUCCESS

    @_c(c_void_p, c_void_p)
    def nvmlDeviceGetMemoryInfo(self, handle: int | None, out: int | None) -> int:
        _require(out)
        total, used = self._memory(handle)
        memory = Memory.from_address(out)  # type: ignore[arg-type]
        memory.total, memory.used, memory.free = total, used, total - used
        return SUCCESS

    @_c(c_void_p, c_void_p)
    def nvmlDeviceGetMemoryInfo_v2(self, handle: int | None, out: int | None) -> int:
        _require(out)
        memory = MemoryV2.from_address(out)  # type: ignore[arg-type]
        if memory.version != MEMORY_V2:
            return ERROR_ARGUMENT_VERSION_MISMATCH
        total, used = self._memory(handle)
        memory.total, memory.reserved = total, st.DRIVER_RESERVE
        memory.used, memory.free = used - st.DRIVER_RESERVE, total - used
        return SUCCESS

    def _memory(self, handle: int | None) -> tuple[int, int]:
        device = self._device(handle)[1]
        total = device["memory_total"]
        return total, min(total, st.used_memory(self._live(), device["uuid"]))

    def _util(self, handle: int | None) -> int:
        return st.utilization(self._live(), self._device(handle)[1]["uuid"])

    @_c(c_void_p, c_void_p)
    def nvmlDeviceGetUtilizationRates(self, handle: int | None, out: int | None) -> int:
        _require(out)
        util = Utilization.from_address(out)  # type: ignore[arg-type]
        util.gpu = self._util(handle)
        util.memory = util.gpu // 2
        return SUCCESS

    @_c(c_void_p, POINTER(c_uint))
    def nvmlDeviceGetPowerUsage(self, handle: int | None, milliwatts: Any) -> int:
        _require(milliwatts)
        milliwatts[0] = 75_000 + 6_250 * self._util(handle)  # 75 W idle .. 700 W flat out
        return SUCCESS

    @_c(c_void_p, c_uint, POINTER(c_uint))
    def nvmlDeviceGetTemperature(self, handle: int | None, sensor: int, celsius: Any) -> int:
        _require(celsius)
        if sensor != 0:  # NVML_TEMPERATURE_GPU
            return ERROR_INVALID_ARGUMENT
        celsius[0] = 28 + self._util(handle) * 2 // 5
        return SUCCESS

    @_c(c_void_p, c_void_p)
    def nvmlDeviceGetTemperatureV(self, handle: int | None, out: int | None) -> int:
        _require(out)
        temperature = TemperatureV1.from_address(out)  # type: ignore[arg-type]
        if temperature.version != TEMPERATURE_V1:
            return ERROR_ARGUMENT_VERSION_MISMATCH
        if temperature.sensorType != 0:
            return ERROR_INVALID_ARGUMENT
        temperature.temperature = 28 + self._util(handle) * 2 // 5
        return SUCCESS

    @_c(c_void_p, c_uint, POINTER(c_uint))
    def nvmlDeviceGetClockInfo(self, handle: int | None, clock: int, mhz: Any) -> int:
        _require(mhz)
        if clock not in _CLOCKS:
            return ERROR_INVALID_ARGUMENT
        low, high = _CLOCKS[clock]
        mhz[0] = low + (high - low) * self._util(handle) // 100
        return SUCCESS

    @_c(c_void_p, c_uint, POINTER(c_uint))
    def nvmlDeviceGetMaxClockInfo(self, handle: int | None, clock: int, mhz: Any) -> int:
        _require(mhz)
        self._device(handle)
        if clock not in _CLOCKS:
            return ERROR_INVALID_ARGUMENT
        mhz[0] = _CLOCKS[clock][1]
        return SUCCESS

    @_c(c_void_p, c_uint, c_uint, POINTER(c_ulonglong))
    def nvmlDeviceGetTotalEccErrors(self, handle: int | None, error_type: int, counter: int, out: Any) -> int:
        _require(out)
        index, device = self._device(handle)
        if not device.get("ecc", True):
            return ERROR_NOT_SUPPORTED
        if error_type not in (0, 1) or counter not in (0, 1):  # corrected/uncorrected; volatile/aggregate
            return ERROR_INVALID_ARGUMENT
        field = "uncorrected" if error_type == 1 else "corrected"
        out[0] = sum(e[field] for e in self._read_events() if e["type"] == "ecc" and e["device"] == index)
        return SUCCESS

    def _processes(self, kind: str, handle: int | None, count: Any, infos: int | None) -> int:
        _require(count)
        uuid = self._device(handle)[1]["uuid"]
        procs = [p for p in self._live() if p["uuid"] == uuid and p.get("kind", "compute") == kind]
        room, count[0] = count[0], len(procs)
        if len(procs) > room or (procs and not infos):
            return ERROR_INSUFFICIENT_SIZE
        array = (ProcessInfo * max(1, len(procs))).from_address(infos) if procs else []  # type: ignore[arg-type]
        for slot, proc in zip(array, procs, strict=False):
            slot.pid, slot.usedGpuMemory = proc["pid"], proc["memory"]
            slot.gpuInstanceId = slot.computeInstanceId = 0xFFFFFFFF  # no MIG
        return SUCCESS

    @_c(c_void_p, POINTER(c_uint), c_void_p)
    def nvmlDeviceGetComputeRunningProcesses_v3(
        self, handle: int | None, count: Any, infos: int | None
    ) -> int:
        return self._processes("compute", handle, count, infos)

    @_c(c_void_p, POINTER(c_uint), c_void_p)
    def nvmlDeviceGetGraphicsRunningProcesses_v3(
        self, handle: int | None, count: Any, infos: int | None
    ) -> int:
        return self._processes("graphics", handle, count, infos)

    nvmlDeviceGetComputeRunningProcesses_v2 = nvmlDeviceGetComputeRunningProcesses_v3  # the same struct
    nvmlDeviceGetGraphicsRunningProcesses_v2 = nvmlDeviceGetGraphicsRunningProcesses_v3

    # --- events ----------------------------------------------------------------------------------

    def _supported_events(self, device: dict[str, Any]) -> int:
        if not device.get("events", True):
            return 0
        ecc = EVENT_SINGLE_BIT_ECC | EVENT_DOUBLE_BIT_ECC if device.get("ecc", True) else 0
        return EVENT_XID | EVENT_PSTATE | EVENT_CLOCK | ecc

    @_c(c_void_p, POINTER(c_ulonglong))
    def nvmlDeviceGetSupportedEventTypes(self, handle: int | None, out: Any) -> int:
        _require(out)
        out[0] = self._supported_events(self._device(handle)[1])
        return SUCCESS

    @_c(c_void_p)
    def nvmlEventSetCreate(self, out: int | None) -> int:
        _require(out)
        with self._lock:
            self._next_event_set += 1
            address = _EVENT_SET_BASE + 0x10 * self._next_event_set
            assert self._state is not None
            event_set = _EventSet(self._state)
            event_set.offset = len(self._read_events())
            self._event_sets[address] = event_set
        c_void_p.from_address(out).value = address  # type: ignore[arg-type]
        return SUCCESS

    def _event_set(self, address: int | None) -> _EventSet:
        event_set = self._event_sets.get(address or 0)
        if event_set is None:
            raise _NvmlError(ERROR_INVALID_ARGUMENT)
        return event_set

    @_c(c_void_p, c_ulonglong, c_void_p)
    def nvmlDeviceRegisterEvents(self, handle: int | None, types: int, address: int | None) -> int:
        index, device = self._device(handle)
        with self._lock:
            event_set = self._event_set(address)
            if not types or types & ~self._supported_events(device):
                return ERROR_NOT_SUPPORTED
            mask = event_set.registered.get(index, (0, 0))[0]
            event_set.registered[index] = (mask | types, len(self._read_events()))
        return SUCCESS

    @_c(c_void_p, c_void_p, c_uint)
    def nvmlEventSetWait_v2(self, address: int | None, out: int | None, timeout_ms: int) -> int:
        _require(out)
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            with self._lock:
                found = self._next_event(self._event_set(address))
            if found is not None:
                index, event_type, value = found
                data = EventData.from_address(out)  # type: ignore[arg-type]
                data.device = _DEVICE_BASE + 0x100 * (index + 1)
                data.eventType, data.eventData = event_type, value
                data.gpuInstanceId = data.computeInstanceId = 0xFFFFFFFF
                return SUCCESS
            left = deadline - time.monotonic()
            if left <= 0:
                return ERROR_TIMEOUT
            self._event_set(address).sleep(left)

    def _next_event(self, event_set: _EventSet) -> tuple[int, int, int] | None:
        events = self._read_events()
        while event_set.offset < len(events):
            position, event = event_set.offset, events[event_set.offset]
            event_set.offset += 1
            mask, since = event_set.registered.get(event["device"], (0, len(events)))
            if position < since:
                continue
            if event["type"] == "xid" and mask & EVENT_XID:
                return event["device"], EVENT_XID, event["xid"]
            if event["type"] == "ecc":
                # one event per bump: the uncorrected kind wins
                if event["uncorrected"] and mask & EVENT_DOUBLE_BIT_ECC:
                    return event["device"], EVENT_DOUBLE_BIT_ECC, 0
                if event["corrected"] and mask & EVENT_SINGLE_BIT_ECC:
                    return event["device"], EVENT_SINGLE_BIT_ECC, 0
        return None

    @_c(c_void_p)
    def nvmlEventSetFree(self, address: int | None) -> int:
        with self._lock:
            self._event_set(address)
            self._event_sets.pop(address).close()  # type: ignore[arg-type]
        return SUCCESS


def _require(*pointers: Any) -> None:
    if not all(pointers):
        raise _NvmlError(ERROR_INVALID_ARGUMENT)


def _put_string(buffer: int | None, length: int, text: bytes) -> int:
    _require(buffer)
    if length < len(text) + 1:
        return ERROR_INSUFFICIENT_SIZE
    ctypes.memmove(buffer, text + b"\0", len(text) + 1)  # type: ignore[arg-type]
    return SUCCESS


_LIBRARY: FakeNvml | None = None
_LIBRARY_LOCK = threading.Lock()


def library() -> FakeNvml:
    """This process's fake library."""
    global _LIBRARY
    with _LIBRARY_LOCK:
        if _LIBRARY is None:
            _LIBRARY = FakeNvml()
        return _LIBRARY
