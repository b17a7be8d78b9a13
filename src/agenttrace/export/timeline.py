"""A run as a timeline: its slices (the run, its processes, the agent's steps, the verification) and
its counters (GPU use), as plain data that both trace formats (Perfetto, Chrome JSON) draw.

Trace viewers want the slices of one track to nest strictly: each pair either disjoint or one
inside the other, never a partial overlap. Concurrent spans (two tool calls at once, a process that
outlives its parent) do overlap partially, so each group of slices is laid out on lanes
(`lanes`): a slice goes on the first lane where it nests, else on a new one, up to `MAX_LANES`;
past that, overlapping slices are merged into `N more` slices on one overflow lane.

What a reviewer reads as the verdict comes from the supervisor only: the run's state and root are
the `runs` view's, the verification track is the `verifications` view's (the supervisor's checks),
and GPU counters are the supervisor's samples. The agent's own steps are drawn as what they are,
with their origin in their arguments; a process the agent reported itself says so.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

Value = str | int | float | bool

UNFINISHED = " (unfinished)"
ORPHANED = " (orphaned)"
AGENT_REPORTED = " [reported by the agent]"
"""Marks a process only the agent reported: a record the audited party wrote about itself."""
MAX_PID = 1 << 22
"""The largest pid a process track is drawn with (Linux's PID_MAX_LIMIT): a recorded pid outside
1..MAX_PID (an agent can report any number), or one another process already holds, is drawn on a
track of its own without a pid, its number kept in the slice's arguments."""
MAX_LANES = 32
"""The most lanes one group's slices are laid out on (`lanes`); what does not fit is merged into
`N more` slices on one more lane, so a run of many overlapping steps stays a few tracks."""


@dataclass
class Slice:
    """One span drawn as a slice, [start_ns, end_ns] in ns since the Unix epoch."""

    name: str
    start_ns: int
    end_ns: int
    category: str
    args: dict[str, Value] = field(default_factory=dict)
    error: bool = False


@dataclass
class Group:
    """Slices drawn together: a process (with its pid), the agent's steps, the verification, the
    run. `parent`: the key of the group it is drawn under (the steps under the agent's process)."""

    key: str
    name: str
    slices: list[Slice]
    pid: int | None = None
    parent: str | None = None

    @property
    def is_process(self) -> bool:
        return self.key.startswith("process:")


@dataclass
class Instant:
    """A moment worth a mark: an error, an orphaned process found at the agent's exit."""

    name: str
    time_ns: int
    group: str
    args: dict[str, Value] = field(default_factory=dict)


@dataclass
class Counter:
    """One metric of one GPU device over the run: (time ns, value) points."""

    key: str
    name: str
    unit: str
    """`percent` or `bytes`."""
    device: int
    points: list[tuple[int, float]]


@dataclass
class Timeline:
    run_id: str
    state: str
    start_ns: int
    end_ns: int
    groups: list[Group]
    counters: list[Counter]
    instants: list[Instant]

    @property
    def slice_count(self) -> int:
        return sum(len(g.slices) for g in self.groups)

    @property
    def process_count(self) -> int:
        return sum(1 for g in self.groups if g.is_process)


def lanes(slices: list[Slice], cap: int = MAX_LANES) -> list[list[Slice]]:
    """The slices on as few lanes as the first fit gives, at most `cap`, each lane strictly nested:
    on one lane two slices are disjoint (one may end where the next starts) or one holds the other.
    Each lane's slices come in start order, a holder before what it holds.

    A slice that fits none of the `cap` lanes goes to one more lane, the overflow: overlapping
    overflow slices are merged into one `N more` slice (category `overflow`, `count` N, the time
    they cover), so that lane's slices are disjoint. O(n log n + n * cap)."""
    placed: list[list[Slice]] = []
    open_ends: list[list[int]] = []  # per lane: the ends of its slices still open, innermost last
    overflow: list[Slice] = []
    for item in sorted(slices, key=lambda s: (s.start_ns, -s.end_ns)):
        for lane, stack in zip(placed, open_ends, strict=True):
            while stack and stack[-1] <= item.start_ns:
                stack.pop()
            if not stack or item.end_ns <= stack[-1]:
                lane.append(item)
                stack.append(item.end_ns)
                break
        else:
            if len(placed) < cap:
                placed.append([item])
                open_ends.append([item.end_ns])
            else:
                overflow.append(item)  # in start order
    if overflow:
        placed.append(_merged(overflow))
    return placed


def _merged(items: list[Slice]) -> list[Slice]:
    """Slices in start order as disjoint `N more` slices, one per run of overlapping ones."""
    merged: list[Slice] = []
    group: list[Slice] = []
    end = 0

    def close() -> None:
        count = len(group)
        merged.append(
            Slice(
                f"{count} more" + (f" (over {MAX_LANES} lanes)" if not merged else ""),
                group[0].start_ns,
                end,
                "overflow",
                {"count": count, "first": group[0].name, "last": group[-1].name},
                error=any(s.error for s in group),
            )
        )

    for item in items:
        if group and item.start_ns >= end:
            close()
            group = []
        end = max(end, item.end_ns) if group else item.end_ns
        group.append(item)
    close()
    return merged


def nesting_events(lane: list[Slice]) -> list[tuple[int, bool, Slice]]:
    """A lane (from `lanes`) as begin and end events in the order a viewer needs them:
    (time ns, True for a begin, the slice); ends before a begin at the same time when the ended
    slice is closed, an inner slice's end before its holder's."""
    events: list[tuple[int, bool, Slice]] = []
    stack: list[Slice] = []
    for item in lane:
        while stack and stack[-1].end_ns <= item.start_ns:
            done = stack.pop()
            events.append((done.end_ns, False, done))
        events.append((item.start_ns, True, item))
        stack.append(item)
    while stack:
        done = stack.pop()
        events.append((done.end_ns, False, done))
    return events


def track_pids(processes: list[dict[str, Any]]) -> dict[str, int]:
    """The pid each process (`export_processes` rows) is drawn with, by span id: the supervisor's
    processes first, then the agent's reports, in start order; a pid outside 1..MAX_PID or already
    taken gets none (its track is then drawn without one)."""
    taken: dict[int, str] = {}
    for proc in sorted(processes, key=lambda p: p["origin"] == "agent"):  # stable: start order kept
        pid = proc["pid"]
        if isinstance(pid, int) and not isinstance(pid, bool) and 1 <= pid <= MAX_PID and pid not in taken:
            taken[pid] = proc["span_id"]
    return {span_id: pid for pid, span_id in taken.items()}


def _end(row: dict[str, Any], close_ns: int) -> tuple[int, bool]:
    """A row's end, and whether it never ended (then: the run's last time, at least its start)."""
    if row["end_ns"] is not None:
        return max(row["end_ns"], row["start_ns"]), False
    return max(close_ns, row["start_ns"]), True


def _clean(args: dict[str, Any]) -> dict[str, Value]:
    return {k: v for k, v in args.items() if v is not None and v != ""}


def build(db: Any, run_id: str) -> Timeline:
    """The run's timeline from its views (`db`: a `Database` or `DerivedDatabase` over the run)."""
    db.materialize()  # six reports read `spans` and `steps`: compute the views once
    (run,) = db.report("export_run", run_id=run_id) or [None]
    if run is None:
        from ..errors import RunNotFoundError

        raise RunNotFoundError(f"run {run_id} has no spans")
    start_ns = run["start_ns"] if run["start_ns"] is not None else run["first_ns"]
    start_ns = min(start_ns, run["first_ns"] or start_ns)
    close_ns = run["end_ns"] if run["end_ns"] is not None else run["last_ns"]
    close_ns = max(close_ns or start_ns, run["last_ns"] or start_ns)
    groups: list[Group] = []
    instants: list[Instant] = []

    def add(group: Group, item: Slice, unfinished: bool, orphaned: bool = False) -> None:
        if unfinished:
            item.name += UNFINISHED
            item.args["unfinished"] = True
        if orphaned:
            item.name += ORPHANED
            item.args["orphaned"] = True
        group.slices.append(item)
        if item.error:
            instants.append(Instant(f"error: {item.name}", item.end_ns, group.key, dict(item.args)))

    supervisor = Group("run", f"agenttrace run {run_id}", [])
    root_end, root_unfinished = _end({"start_ns": start_ns, "end_ns": run["end_ns"]}, close_ns)
    add(
        supervisor,
        Slice(
            f"run {run_id}: {run['state']}",
            start_ns,
            root_end,
            "run",
            _clean(
                {
                    "run_id": run_id,
                    "state": run["state"],
                    "span_id": run["root_span_id"],
                    "exit_code": run["exit_code"],
                    "signal": run["signal"],
                    "command": run["command"],
                }
            ),
            error=run["state"] not in ("succeeded", "running"),
        ),
        root_unfinished,
    )
    for audit in db.report("export_audits", run_id=run_id):
        end, unfinished = _end(audit, close_ns)
        state = audit["state"] or "?"
        args = _clean({"span_id": audit["span_id"], "state": audit["state"]})
        add(supervisor, Slice(f"audit: {state}", audit["start_ns"], end, "audit", args), unfinished)
    groups.append(supervisor)

    root_process: str | None = None
    processes = db.report("export_processes", run_id=run_id)
    drawn_pids = track_pids(processes)
    for proc in processes:
        key = f"process:{proc['span_id']}"
        label = proc["command_line"] or proc["executable"] or f"pid {proc['pid']}"
        if proc["origin"] == "agent":  # the agent's word about a process, not the supervisor's
            label += AGENT_REPORTED
        group = Group(key, label, [], pid=drawn_pids.get(proc["span_id"]))
        end, unfinished = _end(proc, close_ns)
        failed = bool(proc["exit_code"]) or proc["signal"] is not None or proc["status_code"] == "Error"
        args = _clean(
            {
                "pid": proc["pid"],
                "parent_pid": proc["parent_pid"],
                "command_line": proc["command_line"],
                "exit_code": proc["exit_code"],
                "signal": proc["signal"],
                "span_id": proc["span_id"],
                "source": proc["source"],
                "origin": proc["origin"],
            }
        )
        name = f"{proc['executable'] or label} (pid {proc['pid']})"
        if proc["exit_code"] is not None:
            name += f" exit {proc['exit_code']}"
        elif proc["signal"] is not None:
            name += f" {proc['signal']}"
        if proc["origin"] == "agent":
            name += AGENT_REPORTED
        add(group, Slice(name, proc["start_ns"], end, "process", args, error=failed), unfinished,
            bool(proc["alive_at_exit"]))  # fmt: skip
        if proc["alive_at_exit"]:
            instants.append(Instant(f"orphan found: pid {proc['pid']}", end, key, dict(args)))
        if proc["is_root"] and root_process is None:
            root_process = key
        groups.append(group)

    steps = Group("steps", "agent steps", [], parent=root_process)
    for step in db.report("export_steps", run_id=run_id):
        end, unfinished = _end(step, close_ns)
        args = _clean(
            {
                "step": step["step"],
                "kind": step["kind"],
                "span_id": step["span_id"],
                "model": step["model"],
                "tool": step["tool_name"],
                "finish_reason": step["finish_reason"],
                "input_tokens": step["input_tokens"],
                "output_tokens": step["output_tokens"],
                "status": step["status_code"],
            }
        )
        item = Slice(f"{step['step']}. {step['name']}", step["start_ns"], end, step["kind"], args,
                     error=step["status_code"] == "Error")  # fmt: skip
        add(steps, item, unfinished)
    groups.append(steps)

    verification = Group("verification", "verification", [])
    for check in db.report("export_verifications", run_id=run_id):
        end, unfinished = _end(check, close_ns)
        verdict = "pass" if check["passed"] else ("skipped" if check["skipped"] else "fail")
        args = _clean(
            {
                "type": check["type"],
                "id": check["id"],
                "path": check["path"],
                "passed": check["passed"],
                "exit_code": check["exit_code"],
                "skipped": check["skipped"],
                "span_id": check["span_id"],
            }
        )
        item = Slice(f"{check['name']}: {verdict}", check["start_ns"], end, "verify", args,
                     error=check["passed"] is False)  # fmt: skip
        add(verification, item, unfinished)
    groups.append(verification)

    counters: dict[tuple[int, str], Counter] = {}
    for sample in db.report("export_gpu", run_id=run_id):
        device = sample["device"]
        for metric, unit, value in (
            (
                "utilization",
                "percent",
                None if sample["utilization"] is None else sample["utilization"] * 100,
            ),
            ("memory used", "bytes", sample["memory_used"]),
        ):
            if value is None:
                continue
            counter = counters.get((device, metric))
            if counter is None:
                name = f"GPU {device} {metric}" + (" (%)" if unit == "percent" else " (bytes)")
                counter = counters[(device, metric)] = Counter(
                    f"gpu:{device}:{metric}", name, unit, device, []
                )
            counter.points.append((sample["time_ns"], float(value)))
    end_ns = max([close_ns, *(s.end_ns for g in groups for s in g.slices)])
    return Timeline(run_id, run["state"], start_ns, end_ns, groups, list(counters.values()), instants)


__all__ = [
    "AGENT_REPORTED",
    "MAX_LANES",
    "MAX_PID",
    "ORPHANED",
    "UNFINISHED",
    "Counter",
    "Group",
    "Instant",
    "Slice",
    "Timeline",
    "build",
    "lanes",
    "nesting_events",
    "track_pids",
]
