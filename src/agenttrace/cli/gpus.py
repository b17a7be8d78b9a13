"""`agenttrace gpus`: the GPUs of this host, who leases each, and what runs on it."""

from __future__ import annotations

from typing import Any

from .common import JsonOption, handle_errors, print_json, stdout


@handle_errors
def gpus(json_: JsonOption = False) -> None:
    """List this host's GPUs, their leases and the processes using them now.

    For each device (as NVML numbers it): UUID, name, memory used and total, utilization, and its
    lease: the `agenttrace run --gpu` holding it (run id, agenttrace pid, since when) or `free`.
    Then every process with memory on a GPU: pid, device memory and command line.

    Leases are host-wide, whatever the store: a lock per device in $AGENTTRACE_GPU_LOCK_DIR
    (default /tmp/agenttrace-gpu-leases), let go by the kernel when the run holding it ends,
    however it ends. Needs the NVIDIA driver (NVML); without it, an `Error:` line and exit 2.

    Example: agenttrace gpus --json
    """
    from ..gpu.inventory import inventory

    found = inventory()
    if json_:
        print_json(found)
        return
    _print(found)


def _print(found: dict[str, Any]) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..render.values import percent, size

    console = stdout()
    devices = found["devices"]
    if not devices:
        console.print("NVML sees no GPUs on this host.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("GPU", "UUID", "NAME", "MEMORY", "UTIL", "LEASE"):
        table.add_column(column)
    for d in devices:
        memory = f"{size(d['memory_used'])} / {size(d['memory_total'])}"
        lease = d["lease"]["text"] if d["lease"] is not None else "free"
        table.add_row(
            str(d["index"]), Text(d["uuid"]), Text(d["name"]), memory, percent(d["utilization"]), Text(lease)
        )
    console.print(table)
    for d in devices:
        if d["error"]:
            console.print(f"GPU {d['index']}: {d['error']}", style="red", markup=False)
    console.print()
    procs = [(d["index"], p) for d in devices for p in d["processes"]]
    if not procs:
        console.print("No processes on any GPU.")
        return
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("GPU", "PID", "MEMORY", "COMMAND"):
        table.add_column(column)
    for index, p in procs:
        table.add_row(str(index), str(p["pid"]), size(p["memory"]), Text(p["command_line"] or "?"))
    console.print(table)
