"""The fake NVML's state: a directory (named by $FAKE_NVML_STATE) that the fake library, the fake CUDA
processes and the tests share.

    devices.json      [{"uuid", "name", "memory_total", "ecc", "events"}, ...]   index = position
    procs/<pid>.json  {"pid", "start_time", "uuid", "memory", "util", "kind"}   one per fake CUDA process
    events.jsonl      {"device": index, "type": "xid", "xid": N} | {"device", "type": "ecc", "corrected",
                      "uncorrected"}   appended by inject_xid() and bump_ecc()

A registered process counts only while its pid is alive and still has the start time it registered
with (a dead or reused pid's entry is ignored, as the driver drops a dead process's context).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

STATE_ENV = "FAKE_NVML_STATE"
MiB = 1 << 20
H200_MEMORY = 143_771 * MiB  # what NVML reports as the total of an H200
DRIVER_RESERVE = 512 * MiB  # memory the driver holds on every device, counted as used
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(|B|KiB|MiB|GiB|TiB)\s*$")
_UNITS = {"": 1, "B": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30, "TiB": 1 << 40}


def parse_size(text: str) -> int:
    """`512MiB`, `1.5GiB`, `4096` -> bytes."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"not a size: {text!r} (use e.g. 512MiB, 2GiB or a number of bytes)")
    return int(float(match[1]) * _UNITS[match[2]])


def make_state(
    tmp_path: Path,
    n_devices: int = 2,
    *,
    name: str = "NVIDIA H200",
    memory_total: int = H200_MEMORY,
    ecc: bool = True,
    events: bool = True,
) -> Path:
    """A fresh state directory under tmp_path with n_devices alike devices (random UUIDs, so that
    concurrent tests never share a host-wide lease). Edit devices.json afterwards for odd devices."""
    state = tmp_path / "fake-nvml"
    (state / "procs").mkdir(parents=True)
    devices = [
        {
            "uuid": f"GPU-{uuid.uuid4()}",
            "name": name,
            "memory_total": memory_total,
            "ecc": ecc,
            "events": events,
        }
        for _ in range(n_devices)
    ]
    write_devices(state, devices)
    (state / "events.jsonl").touch()
    return state


def write_devices(state: Path, devices: list[dict[str, Any]]) -> None:
    _write_json(state / "devices.json", devices)


def read_devices(state: Path) -> list[dict[str, Any]]:
    devices: list[dict[str, Any]] = json.loads((state / "devices.json").read_text())
    return devices


def inject_xid(state: Path, device_index: int, xid: int) -> None:
    """An Xid error on the device: delivered to event sets registered for nvmlEventTypeXidCriticalError."""
    _append_event(state, {"device": device_index, "type": "xid", "xid": xid})


def bump_ecc(state: Path, device_index: int, *, uncorrected: int = 0, corrected: int = 0) -> None:
    """ECC errors on the device: they add to nvmlDeviceGetTotalEccErrors and raise the double-bit
    (uncorrected) or single-bit (corrected) ECC event."""
    _append_event(
        state, {"device": device_index, "type": "ecc", "uncorrected": uncorrected, "corrected": corrected}
    )


def _append_event(state: Path, event: dict[str, Any]) -> None:
    line = json.dumps({**event, "time": time.time()}) + "\n"
    fd = os.open(state / "events.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())  # one write of one line: readers never see half an event
    finally:
        os.close(fd)


def process_start_time(pid: int) -> int | None:
    """The pid's start time (clock ticks after boot, field 22 of /proc/<pid>/stat); None when the pid
    is gone or a zombie (its GPU context is gone with its memory)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as file:
            stat = file.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    fields = stat[stat.rindex(b")") + 2 :].split()
    if fields[0] in (b"Z", b"X"):
        return None
    return int(fields[19])


class ProcessTable:
    """The live registered processes, re-read on each call (a parsed entry is cached while its file is
    unchanged)."""

    def __init__(self, state: Path) -> None:
        self.procs = state / "procs"
        self._cache: dict[str, tuple[tuple[int, int, int], dict[str, Any] | None]] = {}

    def live(self) -> list[dict[str, Any]]:
        alive = []
        seen = set()
        with os.scandir(self.procs) as entries:
            for entry in entries:
                if not entry.name.endswith(".json"):
                    continue
                seen.add(entry.name)
                stat = entry.stat()
                cached = self._cache.get(entry.name)
                if cached is None or cached[0] != (stat.st_ino, stat.st_mtime_ns, stat.st_size):
                    cached = (
                        (stat.st_ino, stat.st_mtime_ns, stat.st_size),
                        _read_json_or_none(Path(entry.path)),
                    )
                    self._cache[entry.name] = cached
                record = cached[1]
                if record is not None and process_start_time(record["pid"]) == record["start_time"]:
                    alive.append(record)
        for gone in self._cache.keys() - seen:
            del self._cache[gone]
        return sorted(alive, key=lambda record: record["pid"])


def used_memory(procs: list[dict[str, Any]], uuid_: str) -> int:
    """Memory in use on the device: the driver's reserve plus its processes'."""
    return DRIVER_RESERVE + sum(p["memory"] for p in procs if p["uuid"] == uuid_)


def utilization(procs: list[dict[str, Any]], uuid_: str) -> int:
    return min(100, sum(p["util"] for p in procs if p["uuid"] == uuid_))


def visible_devices(devices: list[dict[str, Any]], cuda_visible: str | None) -> list[dict[str, Any]]:
    """The devices CUDA shows a process, in order, for this CUDA_VISIBLE_DEVICES: unset = all; set =
    the listed indices or UUIDs (a UUID may be abbreviated to a unique prefix); like CUDA, the list
    stops at the first entry that names no device, and set-but-empty shows none."""
    if cuda_visible is None:
        return list(devices)
    visible: list[dict[str, Any]] = []
    for raw in cuda_visible.split(","):
        item = raw.strip()
        if item.isdigit():
            found = [devices[int(item)]] if int(item) < len(devices) else []
        elif item.startswith("GPU-"):
            found = [d for d in devices if d["uuid"].startswith(item)]
        else:
            found = []
        if len(found) != 1 or found[0] in visible:
            break
        visible.append(found[0])
    return visible


@contextlib.contextmanager
def locked(state: Path) -> Iterator[None]:
    """Serializes the fake CUDA processes' check-then-register of device memory."""
    fd = os.open(state / ".lock", os.O_RDWR | os.O_CREAT, 0o666)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def register(state: Path, record: dict[str, Any]) -> Path:
    path = state / "procs" / f"{record['pid']}.json"
    _write_json(path, record)
    return path


def _write_json(path: Path, value: Any) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(value, indent=1))
    os.replace(tmp, path)


def _read_json_or_none(path: Path) -> dict[str, Any] | None:
    try:
        record: dict[str, Any] = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return record
