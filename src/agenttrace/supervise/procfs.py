"""What Linux's /proc says of a process: parent, start time, name, command line, and the W3C
TRACEPARENT in its environment.

Reads only what a poller needs, and treats a process that vanishes mid-read as gone.
"""

from __future__ import annotations

import os
import re
import time
from dataclasses import dataclass

_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _boot_time_ns() -> int:
    """The wall-clock time of boot, to the microsecond (/proc/stat's btime is whole seconds)."""
    return time.time_ns() - time.clock_gettime_ns(time.CLOCK_BOOTTIME)


BOOT_TIME_NS = _boot_time_ns()


@dataclass(frozen=True)
class ProcStat:
    pid: int
    ppid: int
    state: str
    """R, S, D, Z (zombie: exited, not yet reaped), T, ..."""
    start_ns: int
    """Start time, nanoseconds since the epoch (at the kernel's clock-tick resolution)."""
    comm: str
    exit_status: int | None = None
    """For a zombie: its wait status (stat field 52, Linux 3.5+), readable before its parent reaps it."""


def pids() -> list[int]:
    return [int(name) for name in os.listdir("/proc") if name.isdigit()]


def stat(pid: int) -> ProcStat | None:
    """The process's /proc/<pid>/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    # comm is in parentheses and may hold spaces or ')': split at the last ')'.
    open_paren, close_paren = raw.find(b"("), raw.rfind(b")")
    fields = raw[close_paren + 2 :].split()
    try:
        return ProcStat(
            pid=pid,
            ppid=int(fields[1]),
            state=fields[0].decode(),
            start_ns=BOOT_TIME_NS + int(fields[19]) * 1_000_000_000 // _CLOCK_TICKS,
            comm=raw[open_paren + 1 : close_paren].decode("utf-8", "replace"),
            exit_status=int(fields[49]) if fields[0] == b"Z" and len(fields) > 49 else None,
        )
    except (IndexError, ValueError):
        return None


def cmdline(pid: int) -> list[str]:
    """argv of a live process ([] for a zombie, a kernel thread, or one that is gone)."""
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            raw = f.read()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0")[:-1]] if raw else []


def exe_name(pid: int) -> str | None:
    try:
        return os.path.basename(os.readlink(f"/proc/{pid}/exe"))
    except OSError:
        return None


_TRACEPARENT = re.compile(rb"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def traceparent(pid: int) -> str | None:
    """The span named by TRACEPARENT in the environment the process was exec'd with, as
    `<trace id>-<span id>`; "" when it has none (or not a valid W3C one); None when the environment
    cannot be read (a zombie, a process that is gone, or another user's)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return None
    if not raw:  # a zombie's memory is gone, or it is in the middle of exec (or has no environment)
        return None
    for entry in raw.split(b"\0"):
        if entry.startswith(b"TRACEPARENT="):
            match = _TRACEPARENT.fullmatch(entry[len(b"TRACEPARENT=") :].strip().lower())
            if match is None or match[1] == b"ff" or not match[2].strip(b"0") or not match[3].strip(b"0"):
                return ""
            return f"{match[2].decode()}-{match[3].decode()}"
    return ""
