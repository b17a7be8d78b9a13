"""Compare two stored runs (`agenttrace diff RUN_A RUN_B`): where their steps part, and what else
differs. It works on any two runs, replayed or not, from what the views hold; each run is read
from its derived tables when they are usable (`analysis.derived`).

**Alignment.** Each run's steps, in order, are aligned by a longest-common-subsequence over a
*coarse key* (the kind; a tool step's tool name; a process step's executable; another step's
name), preferring pairs whose *signature* is the same:

    llm      model, the request's messages (input), finish reason
    tool     tool name, arguments (input)
    process  command line (input)
    other    kind, name, input

Volatile fields are left out of an LLM step's messages before they are compared: the keys
`id`, `tool_call_id`, `call_id`, `created`, `created_at`, `timestamp`, `system_fingerprint`,
`request_id` and `response_id`, at any depth of their JSON (tool-call ids differ between two runs
that made the same calls). Tool arguments and results, command lines and exit codes are compared
as recorded. The **first divergence** is the first aligned pair whose signatures differ, or the
first step present in one run only. A pair with the same signature can still differ in what came
back (an LLM step's answer, a tool's result, an exit code, how it ended): that is listed, and is
not a divergence (a different tool result is seen by the next LLM request).

**The answer** (`diff_runs`, printed by `agenttrace diff --json`; keys are stable):

    run_a, run_b        {run_id, name, state, command, started, ended, exit: {code, signal},
                         replay_of, verdict: recorded | audited, reasons}
    first_divergence    null, or {step_a, step_b, kind, what, differences}
    steps               every aligned pair: {step_a, step_b, kind, name, same, differences}
                        (step_a or step_b null: the step is in one run only); a difference is
                        {field, path, a, b}: `path` is where inside a JSON value the first
                        difference is (`[3].parts[0].content`), "" for the value itself
    tools               tool steps that differ: {a, b, differences} with a and b
                        {step, tool_name, arguments, result, exit_code, status} or null
    processes           the runs' OS processes (the processes view, aligned the same way by
                        command line) that differ: {a, b, differences} with a and b
                        {pid, command_line, exit_code, signal, alive_at_exit} or null (a
                        command line the process watcher could not read is not a difference)
    files               files written or deleted that differ: {path, change: added | removed |
                        changed, a, b} with a and b {role, sha256, size} or null
    deltas              {input_tokens, output_tokens, cost_usd, wall_time_s, steps, llm_steps,
                        tool_steps, process_steps}, each {a, b, delta} (delta = b - a; null when
                        either is unknown); wall time is the agent's duration, else the run's
    gates               every gate of either run: {name, severity, a, b, same} (a, b: pass |
                        fail | n/a, or null where that run has no such gate)

The verdicts are those the runs' supervisors recorded (`agenttrace run` audits each run at its
end); a run without one, or that no supervisor recorded (whose agent could have written an audit
record of its own), is audited now, with the same gates and machinery as `agenttrace audit`.
"""

from __future__ import annotations

import difflib
import json
from collections.abc import Callable, Hashable, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import QueryError

if TYPE_CHECKING:
    from ..store.layout import StoreLayout

VOLATILE_KEYS = frozenset(
    {
        "id", "tool_call_id", "call_id", "created", "created_at", "timestamp", "system_fingerprint",
        "request_id", "response_id",
    }
)  # fmt: skip
"""Keys left out of an LLM step's messages before they are compared (see the module docstring)."""

MAX_ALIGN_CELLS = 1_000_000
"""Past this many (steps of A) x (steps of B) left after the common start and end, the alignment
is difflib's matching blocks over the coarse keys instead of the exact LCS (linear-ish time)."""

_STEP_FIELDS: dict[str, tuple[str, ...]] = {
    "llm": ("model", "input", "finish_reason"),
    "tool": ("tool_name", "input"),
    "process": ("input",),
}
"""The fields of each kind's signature; other kinds: name and input."""
_OUTCOME_FIELDS = ("output", "exit_code", "status", "finish_reason")
"""What came back, compared for every aligned pair (a difference here is not a divergence)."""


# -- values ---------------------------------------------------------------------------------------


def _parsed(text: Any) -> Any:
    """Inputs and outputs are stored as text; JSON ones are compared as JSON."""
    if isinstance(text, str) and text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def _without_volatile(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _without_volatile(v) for k, v in value.items() if k not in VOLATILE_KEYS}
    if isinstance(value, list):
        return [_without_volatile(v) for v in value]
    return value


def _compared(step: dict[str, Any], field: str) -> Any:
    """A step's field as the diff compares it."""
    value = step.get(field)
    if field in ("input", "output"):
        value = _parsed(value)
        if step["kind"] == "llm":
            value = _without_volatile(value)
    return value


def first_difference(a: Any, b: Any, path: str = "") -> tuple[str, Any, Any] | None:
    """Where two JSON values first differ: (path, the part of a, the part of b), the path in
    JSONPath-like form (`[2].parts[0].content`, "" for the values themselves); None if equal."""
    if a == b:
        return None
    if isinstance(a, dict) and isinstance(b, dict):
        for key in list(a) + [k for k in b if k not in a]:
            if key not in a or key not in b:
                return f"{path}.{key}", a.get(key), b.get(key)
            found = first_difference(a[key], b[key], f"{path}.{key}")
            if found is not None:
                return found
    if isinstance(a, list) and isinstance(b, list):
        for i, (x, y) in enumerate(zip(a, b, strict=False)):
            found = first_difference(x, y, f"{path}[{i}]")
            if found is not None:
                return found
        i = min(len(a), len(b))
        return f"{path}[{i}]", a[i] if i < len(a) else None, b[i] if i < len(b) else None
    return path, a, b


def _signature(step: dict[str, Any]) -> str:
    fields = _STEP_FIELDS.get(step["kind"], ("name", "input"))
    return json.dumps([step["kind"], *(_compared(step, f) for f in fields)], sort_keys=True, default=str)


def _step_key(step: dict[str, Any]) -> Hashable:
    kind = step["kind"]
    if kind == "llm":
        return (kind,)
    if kind == "tool":
        return (kind, step.get("tool_name") or step.get("name"))
    if kind == "process":
        command = str(step.get("input") or step.get("name") or "").split()
        return (kind, command[0].rsplit("/", 1)[-1] if command else "")
    return (kind, step.get("name"))


# -- alignment ------------------------------------------------------------------------------------


def align(
    a: Sequence[Any],
    b: Sequence[Any],
    key: Callable[[Any], Hashable],
    signature: Callable[[Any], Hashable],
) -> list[tuple[int | None, int | None]]:
    """Align two sequences: pairs of indexes (None: in one sequence only), in order. Items pair
    only when their keys are equal; among such alignments, the one with the most pairs of equal
    signatures (worth two) and of equal keys (worth one) is chosen (a weighted LCS)."""
    keys_a, keys_b = [key(x) for x in a], [key(x) for x in b]
    sigs_a, sigs_b = [signature(x) for x in a], [signature(x) for x in b]
    start = 0
    while start < len(a) and start < len(b) and sigs_a[start] == sigs_b[start]:
        start += 1
    end = 0
    while (
        end < len(a) - start and end < len(b) - start and sigs_a[len(a) - 1 - end] == sigs_b[len(b) - 1 - end]
    ):
        end += 1
    middle = _align_middle(
        keys_a[start : len(a) - end], keys_b[start : len(b) - end],
        sigs_a[start : len(a) - end], sigs_b[start : len(b) - end],
    )  # fmt: skip
    pairs: list[tuple[int | None, int | None]] = [(i, i) for i in range(start)]
    pairs += [(None if i is None else i + start, None if j is None else j + start) for i, j in middle]
    pairs += [(len(a) - end + k, len(b) - end + k) for k in range(end)]
    return pairs


def _align_middle(
    keys_a: list[Hashable], keys_b: list[Hashable], sigs_a: list[Hashable], sigs_b: list[Hashable]
) -> list[tuple[int | None, int | None]]:
    n, m = len(keys_a), len(keys_b)
    if n == 0 or m == 0:
        return [(i, None) for i in range(n)] + [(None, j) for j in range(m)]
    matched: list[tuple[int, int]] = []
    if n * m > MAX_ALIGN_CELLS:
        blocks = difflib.SequenceMatcher(None, keys_a, keys_b, autojunk=False).get_matching_blocks()
        matched = [(blk.a + k, blk.b + k) for blk in blocks for k in range(blk.size)]
    else:
        # score[i][j]: the best weight aligning a[i:] with b[j:]
        score = [[0] * (m + 1) for _ in range(n + 1)]
        for i in range(n - 1, -1, -1):
            row, below = score[i], score[i + 1]
            for j in range(m - 1, -1, -1):
                best = below[j] if below[j] >= row[j + 1] else row[j + 1]
                if keys_a[i] == keys_b[j]:
                    pair = below[j + 1] + (2 if sigs_a[i] == sigs_b[j] else 1)
                    if pair > best:
                        best = pair
                row[j] = best
        i = j = 0
        while i < n and j < m:
            if keys_a[i] == keys_b[j] and score[i][j] == score[i + 1][j + 1] + (
                2 if sigs_a[i] == sigs_b[j] else 1
            ):
                matched.append((i, j))
                i, j = i + 1, j + 1
            elif score[i][j] == score[i + 1][j]:
                i += 1
            else:
                j += 1
    pairs: list[tuple[int | None, int | None]] = []
    i = j = 0
    for mi, mj in [*matched, (n, m)]:
        pairs += [(x, None) for x in range(i, mi)] + [(None, y) for y in range(j, mj)]
        if mi < n and mj < m:
            pairs.append((mi, mj))
        i, j = mi + 1, mj + 1
    return pairs


# -- the parts of the answer ----------------------------------------------------------------------


def _difference(field: str, a: Any, b: Any) -> dict[str, Any] | None:
    found = first_difference(a, b)
    if found is None:
        return None
    path, part_a, part_b = found
    return {"field": field, "path": path, "a": part_a, "b": part_b}


def _step_differences(a: dict[str, Any], b: dict[str, Any]) -> tuple[bool, list[dict[str, Any]]]:
    """(whether the signatures are the same, what differs: signature fields first, then outcomes)."""
    fields = _STEP_FIELDS.get(a["kind"], ("name", "input"))
    differences = [_difference(f, _compared(a, f), _compared(b, f)) for f in fields]
    same = not any(differences)
    differences += [
        _difference(f, _compared(a, f), _compared(b, f)) for f in _OUTCOME_FIELDS if f not in fields
    ]
    return same, [d for d in differences if d is not None]


def _describe(step: dict[str, Any]) -> str:
    kind = step["kind"]
    if kind == "llm":
        return f"LLM call to {step.get('model') or '?'}"
    if kind == "tool":
        return f"tool `{step.get('tool_name') or step['name']}`"
    if kind == "process":
        return f"process `{_clip(step.get('input') or step['name'], 80)}`"
    return f"{kind} `{step['name']}`"


def _clip(value: Any, limit: int = 120) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def what_differed(pair: dict[str, Any], a: dict[str, Any] | None, b: dict[str, Any] | None) -> str:
    """One line: what parts the two steps of a diverging pair (or the step in one run only)."""
    if b is None and a is not None:
        return f"only in run A: {_describe(a)} (step {a['step']})"
    if a is None and b is not None:
        return f"only in run B: {_describe(b)} (step {b['step']})"
    parts = []
    for d in pair["differences"]:
        where = f" at {d['path']}" if d["path"] else ""
        parts.append(f"{d['field'].replace('_', ' ')}{where}: {_clip(d['a'], 60)} → {_clip(d['b'], 60)}")
    return "; ".join(parts)


def _step_pairs(
    steps_a: list[dict[str, Any]], steps_b: list[dict[str, Any]]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    pairs = []
    first: dict[str, Any] | None = None
    for i, j in align(steps_a, steps_b, _step_key, _signature):
        a = steps_a[i] if i is not None else None
        b = steps_b[j] if j is not None else None
        either = a if a is not None else b
        assert either is not None
        if a is not None and b is not None:
            same, differences = _step_differences(a, b)
        else:
            same, differences = False, []
        name = either["name"]
        if a is not None and b is not None and a["name"] != b["name"]:
            name = f"{a['name']} | {b['name']}"
        pair = {
            "step_a": a["step"] if a is not None else None,
            "step_b": b["step"] if b is not None else None,
            "kind": either["kind"],
            "name": name,
            "same": same,
            "differences": differences,
        }
        if not same and first is None:
            first = {
                "step_a": pair["step_a"],
                "step_b": pair["step_b"],
                "kind": pair["kind"],
                "what": what_differed(pair, a, b),
                "differences": differences,
            }
        pairs.append(pair)
    return pairs, first


def _tool_view(step: dict[str, Any]) -> dict[str, Any]:
    return {
        "step": step["step"],
        "tool_name": step.get("tool_name") or step["name"],
        "arguments": _parsed(step.get("input")),
        "result": _parsed(step.get("output")),
        "exit_code": step.get("exit_code"),
        "status": step.get("status"),
    }


def _tools(
    pairs: list[dict[str, Any]], steps_a: dict[int, dict[str, Any]], steps_b: dict[int, dict[str, Any]]
) -> list[dict[str, Any]]:
    found = []
    for pair in pairs:
        if pair["kind"] != "tool":
            continue
        a = _tool_view(steps_a[pair["step_a"]]) if pair["step_a"] is not None else None
        b = _tool_view(steps_b[pair["step_b"]]) if pair["step_b"] is not None else None
        if a is None or b is None:
            differences = ["only in run A" if b is None else "only in run B"]
        else:
            differences = [
                f for f in ("tool_name", "arguments", "result", "exit_code", "status") if a[f] != b[f]
            ]
        if differences:
            found.append({"a": a, "b": b, "differences": differences})
    return found


_PROCESS_FIELDS = ("command_line", "exit_code", "signal", "alive_at_exit")


def _process_view(row: dict[str, Any]) -> dict[str, Any]:
    return {"pid": row["pid"], **{f: row[f] for f in _PROCESS_FIELDS}}


def _processes(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    def key(row: dict[str, Any]) -> Hashable:
        return row.get("executable") or str(row.get("command_line") or "").split(" ", 1)[0]

    def signature(row: dict[str, Any]) -> Hashable:
        return json.dumps([row.get(f) for f in _PROCESS_FIELDS], default=str)

    found = []
    for i, j in align(rows_a, rows_b, key, signature):
        a = _process_view(rows_a[i]) if i is not None else None
        b = _process_view(rows_b[j]) if j is not None else None
        if a is None or b is None:
            differences = ["only in run A" if b is None else "only in run B"]
        else:
            differences = [f for f in _PROCESS_FIELDS if a[f] != b[f]]
            if not a["command_line"] or not b["command_line"]:  # the watcher could not read one
                differences = [f for f in differences if f != "command_line"]
        if differences:
            found.append({"a": a, "b": b, "differences": differences})
    return found


def _files(rows_a: list[dict[str, Any]], rows_b: list[dict[str, Any]]) -> list[dict[str, Any]]:
    by_a = {r["path"]: {k: r[k] for k in ("role", "sha256", "size")} for r in rows_a}
    by_b = {r["path"]: {k: r[k] for k in ("role", "sha256", "size")} for r in rows_b}
    found = []
    for path in sorted(set(by_a) | set(by_b)):
        a, b = by_a.get(path), by_b.get(path)
        if a == b:
            continue
        change = "added" if a is None else "removed" if b is None else "changed"
        found.append({"path": path, "change": change, "a": a, "b": b})
    return found


def _delta(a: Any, b: Any) -> dict[str, Any]:
    delta = b - a if isinstance(a, int | float) and isinstance(b, int | float) else None
    if isinstance(delta, float):
        delta = round(delta, 6)
    return {"a": a, "b": b, "delta": delta}


def _deltas(run_a: dict[str, Any], run_b: dict[str, Any]) -> dict[str, Any]:
    def wall(run: dict[str, Any]) -> Any:
        value = run["agent_duration_s"] if run["agent_duration_s"] is not None else run["duration_s"]
        return round(value, 6) if isinstance(value, float) else value

    fields = ("input_tokens", "output_tokens", "cost_usd")
    counts = ("steps", "llm_steps", "tool_steps", "process_steps")
    out = {f: _delta(run_a[f], run_b[f]) for f in fields}
    out["wall_time_s"] = _delta(wall(run_a), wall(run_b))
    out |= {f: _delta(run_a[f], run_b[f]) for f in counts}
    return out


def _gates(verdict_a: dict[str, Any], verdict_b: dict[str, Any]) -> list[dict[str, Any]]:
    names = list(verdict_a["gates"]) + [n for n in verdict_b["gates"] if n not in verdict_a["gates"]]
    severities = {**verdict_b["severities"], **verdict_a["severities"]}
    found = []
    for name in names:
        a, b = verdict_a["gates"].get(name), verdict_b["gates"].get(name)
        found.append(
            {"name": name, "severity": severities.get(name, "error"), "a": a, "b": b, "same": a == b}
        )
    return found


# -- reading a run --------------------------------------------------------------------------------


def _verdict(layout: StoreLayout, run_id: str, run: dict[str, Any]) -> dict[str, Any]:
    """The run's verdict: {state, source, reasons, gates: {name: status}, severities}. The one its
    supervisor recorded, else an audit now (as `agenttrace audit` does it). A run no supervisor
    recorded (in-process, `agenttrace serve`) is always audited now: its agent could have written
    an `audit` span of its own."""
    from ..audit.gates import audit_gates

    gates = audit_gates(run["recorded_gates"], None)
    severities = {g.name: g.severity for g in gates}
    recorded = _recorded_gates(run["audit_gates"])
    if run["supervised"] and run["audit_state"] is not None and recorded is not None:
        try:
            reasons = [str(r) for r in json.loads(run["audit_reasons"] or "[]")]
        except ValueError:
            reasons = []
        return {
            "state": run["audit_state"],
            "source": "recorded",
            "reasons": reasons,
            "gates": recorded,
            "severities": severities,
        }
    from ..audit.verdict import audit
    from .derived import run_database

    verdict = run_database(layout, run_id, lambda db: audit(db, run_id, gates), verify=True)
    return {
        "state": verdict.state,
        "source": "audited",
        "reasons": verdict.reasons,
        "gates": {g.gate.name: g.status for g in verdict.gates},
        "severities": severities,
    }


def _recorded_gates(text: Any) -> dict[str, str] | None:
    if not isinstance(text, str):
        return None
    try:
        value = json.loads(text)
    except ValueError:
        return None
    if not isinstance(value, dict):
        return None
    return {str(k): str(v) for k, v in sorted(value.items())}


def read_run(layout: StoreLayout, run_id: str) -> dict[str, Any]:
    """One run's side of a diff: {run, steps, processes, files, warnings}."""
    from .derived import run_database

    def read(db: Any) -> dict[str, Any]:
        db.materialize()  # four reports over the same views
        return {
            "run": db.report("diff_run", run_id=run_id),
            "steps": db.report("diff_steps", run_id=run_id),
            "processes": db.report("diff_processes", run_id=run_id),
            "files": db.report("diff_files", run_id=run_id),
            "warnings": list(db.warnings),
        }

    side = run_database(layout, run_id, read)
    if not side["run"]:
        raise QueryError(f"run {run_id} has no spans to compare")
    side["run"] = side["run"][0]
    side["verdict"] = _verdict(layout, run_id, side["run"])
    return side


def _run_view(side: dict[str, Any]) -> dict[str, Any]:
    run, verdict = side["run"], side["verdict"]
    return {
        "run_id": run["run_id"],
        "name": run["name"],
        "state": verdict["state"],
        "command": run["command"],
        "started": run["started"],
        "ended": run["ended"],
        "exit": {"code": run["exit_code"], "signal": run["signal"]},
        "replay_of": run["replay_of"],
        "verdict": verdict["source"],
        "reasons": verdict["reasons"],
    }


def diff_runs(layout: StoreLayout, run_a: str, run_b: str) -> tuple[dict[str, Any], list[str]]:
    """The diff of two runs (see the module docstring for its keys), and warnings from reading
    them."""
    side_a = read_run(layout, run_a)
    side_b = read_run(layout, run_b) if run_b != run_a else side_a
    return compare(side_a, side_b), side_a["warnings"] + (side_b["warnings"] if side_b is not side_a else [])


def compare(side_a: dict[str, Any], side_b: dict[str, Any]) -> dict[str, Any]:
    """The diff of two runs read by `read_run`."""
    steps_a, steps_b = side_a["steps"], side_b["steps"]
    pairs, first = _step_pairs(steps_a, steps_b)
    return {
        "run_a": _run_view(side_a),
        "run_b": _run_view(side_b),
        "first_divergence": first,
        "steps": pairs,
        "tools": _tools(pairs, {s["step"]: s for s in steps_a}, {s["step"]: s for s in steps_b}),
        "processes": _processes(side_a["processes"], side_b["processes"]),
        "files": _files(side_a["files"], side_b["files"]),
        "deltas": _deltas(side_a["run"], side_b["run"]),
        "gates": _gates(side_a["verdict"], side_b["verdict"]),
    }


__all__ = ["VOLATILE_KEYS", "align", "compare", "diff_runs", "first_difference", "read_run", "what_differed"]
