"""GPU use in `agenttrace show` and `agenttrace step`: marks on processes, the lease, intruders, and
the devices under a step (from `analysis.gpu_use`)."""

from __future__ import annotations

from typing import Any

from rich.text import Text

from .values import clock, percent, size


def process_marks(uses: list[dict[str, Any]]) -> Text:
    """`  GPU 0: 1.0 GiB peak` for each device a process was seen on (`gpu_processes` rows of one
    process); a device the run did not lease is said so."""
    text = Text()
    for i, use in enumerate(uses):
        text.append(", " if i else "  ")
        where = f"GPU {use['device']}" if use["device"] is not None else f"GPU {use['uuid']}"
        if use["leased"]:
            text.append(f"{where}: {size(use['peak_memory'])} peak", style="magenta")
        else:
            text.append(f"{where} (not leased): {size(use['peak_memory'])} peak", style="bold red")
    return text


def marks_by_span(processes: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    by_span: dict[str, list[dict[str, Any]]] = {}
    for use in processes:
        if use["span_id"] is not None:
            by_span.setdefault(use["span_id"], []).append(use)
    return by_span


def _device(row: dict[str, Any]) -> str:
    return f"GPU {row['device']} ({row['uuid']})" if row["device"] is not None else f"GPU {row['uuid']}"


def _seen(row: dict[str, Any]) -> str:
    return f"from {clock(row['first_seen'])} to {clock(row['last_seen'])}"


def _lease_lines(lease: list[dict[str, Any]]) -> list[Text]:
    lines: list[Text] = []
    by_span: dict[str, list[dict[str, Any]]] = {}
    for row in lease:
        by_span.setdefault(row["span_id"], []).append(row)
    for rows in by_span.values():
        first = rows[0]
        head = Text("GPU lease: ", style="bold")
        head.append(", ".join(_device(r) for r in rows))
        waited = first["waited_s"]
        head.append(f" · waited {waited:.1f} s" if waited is not None else "", style="dim")
        head.append(f" · held {clock(first['start_time'])} to {clock(first['end_time'])}", style="dim")
        lines.append(head)
        if first["lost"]:
            lines.append(Text(f"  LOST: {first['lost']}", style="bold red"))
        if not first["ended"]:
            lines.append(Text("  never let go: the supervisor holding it did not end it", style="bold red"))
        for row in rows:
            line = Text(f"  GPU {row['device']}" + (f" {row['name']}" if row["name"] else "") + ": ")
            if not row["samples"]:
                line.append("never sampled while leased", style="bold red")
                lines.append(line)
                continue
            line.append(
                f"utilization max {percent(row['utilization_max'])} (avg {percent(row['utilization_avg'])}), "
                f"memory peak {size(row['memory_used_max'])} of {size(row['memory_total'])}, "
                f"{row['samples']} samples"
            )
            if row["xids"]:
                line.append(" · Xid " + ", ".join(str(x) for x in row["xids"]), style="bold red")
            if row["ecc_uncorrected"]:
                line.append(f" · {row['ecc_uncorrected']} uncorrected ECC error(s)", style="bold red")
            lines.append(line)
    return lines


def gpu_lines(gpu: dict[str, Any] | None) -> list[Text]:
    """The GPU part of `agenttrace show` under the tree: the lease with its devices, the run's
    processes seen on a GPU that the tree could not mark, and the intruders. Nothing for a run
    that leased no GPU and used none."""
    if gpu is None:
        return []
    lease, processes, intruders = gpu["lease"], gpu["processes"], gpu["intruders"]
    lines: list[Text] = _lease_lines(lease)
    if not lease and processes:
        said = "GPU lease: none, yet the run's processes used a GPU (agenttrace run --gpu)"
        lines.append(Text(said, style="bold red"))
    unplaced = [p for p in processes if p["span_id"] is None]
    if unplaced:
        lines.append(Text(f"Processes of the run on a GPU, not in its process tree ({len(unplaced)}):"))
        for use in unplaced:
            line = Text(f"  - pid {use['pid']} `{use['command_line'] or '?'}` {_seen(use)}")
            line.append_text(process_marks([use]))
            lines.append(line)
    if intruders:
        lines.append(Text(f"Intruders on leased GPUs ({len(intruders)}):", style="bold red"))
        for row in intruders:
            lines.append(Text(
                f"  - pid {row['pid']} `{row['command_line'] or '?'}` on {_device(row)} {_seen(row)}, "
                f"{size(row['peak_memory'])} peak",
                style="red",
            ))  # fmt: skip
    return lines


def step_process_marks(uses: list[dict[str, Any]]) -> Text:
    """What `agenttrace step` adds to a process under the step: each GPU, peak memory, and when."""
    text = Text()
    for use in uses:
        text.append_text(process_marks([use]))
        text.append(f" {_seen(use)}", style="dim")
    return text


def step_device_lines(devices: list[dict[str, Any]]) -> list[Text]:
    """`GPU during this step:` one line per device the run leased or used during it."""
    if not devices:
        return []
    lines = [Text("GPU during this step:")]
    for row in devices:
        name = f"GPU {row['device']}" + (f" {row['name']}" if row["name"] else "")
        line = Text(f"  - {name}" + ("" if row["leased"] else " (not leased)") + ": ")
        if not row["samples"]:
            line.append("no sample was taken during this step", style="dim")
        else:
            line.append(
                f"utilization min {percent(row['utilization_min'])}, avg {percent(row['utilization_avg'])}, "
                f"max {percent(row['utilization_max'])}; memory up to {size(row['memory_used_max'])} of "
                f"{size(row['memory_total'])} ({row['samples']} samples)"
            )
        lines.append(line)
    return lines
