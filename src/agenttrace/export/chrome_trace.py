"""A timeline in the Trace Event Format (`.json`), which chrome://tracing and ui.perfetto.dev open.

`{"traceEvents": [...], "displayTimeUnit": "ms", "otherData": {...}}` with:
- `ph: "M"` metadata: each process's name (its command line) and each lane's thread name;
- `ph: "X"` complete events, one per slice, `ts` and `dur` in whole microseconds since the Unix
  epoch (integers: exact, and flooring keeps every lane's nesting);
- `ph: "C"` counters: each GPU device's utilization (%) and memory used (bytes);
- `ph: "i"` instants: errors and orphaned processes found at the agent's exit.
Each OS process is a `pid` (its own pid; its lifetime slice on `tid` = pid); the agent's steps are
threads of the agent's root process, one `tid` per lane; the run, the verification and the GPUs
are processes of their own with ids above any Linux pid (`SYNTHETIC_PID`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .timeline import Timeline, lanes, nesting_events

SYNTHETIC_PID = 1 << 23
"""Ids of the tracks that are not OS processes start here (Linux pids stay below 2^22)."""


@dataclass
class ChromeCounts:
    events: int
    slices: int
    counters: int
    instants: int


def _us(ns: int) -> int:
    return ns // 1000


def to_chrome_trace(timeline: Timeline) -> tuple[dict[str, Any], ChromeCounts]:
    """The trace as a JSON-ready dict, and what it holds."""
    events: list[dict[str, Any]] = []
    synthetic = iter(range(SYNTHETIC_PID, SYNTHETIC_PID + (1 << 20)))
    where: dict[str, tuple[int, int]] = {}  # group key -> (pid, first tid)
    slices = 0

    def meta(name: str, pid: int, tid: int, value: str) -> None:
        events.append({"ph": "M", "name": name, "pid": pid, "tid": tid, "args": {"name": value}})

    ordered = sorted(timeline.groups, key=lambda g: (not g.is_process,))
    for group in ordered:
        if not group.slices:
            continue
        placed = lanes(group.slices)
        parent = where.get(group.parent) if group.parent else None
        if group.is_process and group.pid is not None:
            pid, tid = group.pid, group.pid
            meta("process_name", pid, tid, group.name)
        elif parent is not None:
            pid, tid = parent[0], next(synthetic)
        else:
            pid = tid = next(synthetic)
            meta("process_name", pid, tid, group.name)
        where[group.key] = (pid, tid)
        for index, lane in enumerate(placed):
            lane_tid = tid if index == 0 else next(synthetic)
            meta("thread_name", pid, lane_tid, group.name if index == 0 else f"{group.name} ({index + 1})")
            for _, begin, item in nesting_events(lane):
                if not begin:
                    continue
                start = _us(item.start_ns)
                events.append(
                    {
                        "ph": "X",
                        "name": item.name,
                        "cat": item.category,
                        "pid": pid,
                        "tid": lane_tid,
                        "ts": start,
                        "dur": _us(item.end_ns) - start,
                        "args": item.args,
                    }
                )
                slices += 1
    for instant in timeline.instants:
        pid, tid = where[instant.group]
        events.append(
            {"ph": "i", "s": "t", "name": instant.name, "cat": "mark", "pid": pid, "tid": tid,
             "ts": _us(instant.time_ns), "args": instant.args}
        )  # fmt: skip
    counters = 0
    if timeline.counters:
        gpu_pid = next(synthetic)
        meta("process_name", gpu_pid, gpu_pid, "GPU")
        for counter in timeline.counters:
            key = "%" if counter.unit == "percent" else "bytes"
            for ts, value in counter.points:
                events.append(
                    {"ph": "C", "name": counter.name, "pid": gpu_pid, "tid": gpu_pid, "ts": _us(ts),
                     "args": {key: value}}
                )  # fmt: skip
                counters += 1
    document = {
        "traceEvents": events,
        "displayTimeUnit": "ms",
        "otherData": {
            "run_id": timeline.run_id,
            "state": timeline.state,
            "exporter": "agenttrace",
        },
    }
    return document, ChromeCounts(len(events), slices, counters, len(timeline.instants))


__all__ = ["SYNTHETIC_PID", "ChromeCounts", "to_chrome_trace"]
