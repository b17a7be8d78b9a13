"""What `agenttrace gpus` shows: every device NVML sees, its lease and the processes on it now."""

from __future__ import annotations

import os
import shlex
from datetime import UTC, datetime
from typing import Any

from ..errors import GpuError
from .lease import Holder, holders, lock_dir_path
from .nvml import Nvml


def inventory(lock_dir: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """`{"devices": [{"index", "uuid", "name", "memory_used", "memory_total", "utilization",
    "lease": {...} | None, "processes": [{"pid", "memory", "command_line"}], "error"}], "lock_dir"}`.

    `GpuError` where NVML cannot be used. A device NVML cannot read is listed with what could be read
    and the reason in `error`, so that one failing GPU does not hide the others."""
    with Nvml.open() as nvml:
        devices = nvml.devices()
        leases = holders(devices, lock_dir)
        listed = []
        for device in devices:
            entry: dict[str, Any] = {
                "index": device.index,
                "uuid": device.uuid,
                "name": device.name,
                "memory_used": None,
                "memory_total": device.memory_total,
                "utilization": None,
                "lease": _lease(leases[device.uuid]),
                "processes": [],
                "error": None,
            }
            try:
                reading = nvml.reading(device.index)
                entry["memory_used"] = reading.memory_used
                if reading.memory_total is not None:
                    entry["memory_total"] = reading.memory_total
                entry["utilization"] = reading.utilization
                entry["processes"] = [
                    {"pid": p.pid, "memory": p.used_memory, "command_line": command_line(p.pid)}
                    for p in nvml.processes(device.index)
                ]
            except GpuError as e:
                entry["error"] = str(e)
            listed.append(entry)
    return {"devices": listed, "lock_dir": str(lock_dir_path(lock_dir))}


def _lease(holder: Holder | None) -> dict[str, Any] | None:
    if holder is None:
        return None
    since = None
    if holder.since is not None:
        since = datetime.fromtimestamp(holder.since, UTC).isoformat().replace("+00:00", "Z")
    return {
        "run_id": holder.run_id,
        "pid": holder.pid,
        "since": since,
        "store": holder.store,
        "devices": list(holder.devices),
        "text": holder.describe(),
    }


def command_line(pid: int) -> str | None:
    """The process's command line from /proc, secrets redacted; None where it cannot be read (gone,
    another pid namespace, a kernel thread)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    argv = [a.decode(errors="replace") for a in raw.rstrip(b"\0").split(b"\0")] if raw else []
    if not argv:
        return None
    from ..capture.redact import redact_argv

    return shlex.join(redact_argv(argv))
