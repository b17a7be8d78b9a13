"""The human view of `agenttrace diff`: the two runs, the first divergence, then the steps, tools,
processes and files that differ, the deltas, and the gates side by side (empty sections left
out)."""

from __future__ import annotations

import json
from typing import Any

from rich.console import Group
from rich.table import Table
from rich.text import Text

from .values import duration, size

STATE_STYLE = {"succeeded": "green"}
GATE_STYLE = {"pass": "green", "fail": "red", "n/a": "dim"}
MAX_ROWS = 50
"""Rows shown per section; the rest are counted (`--json` has them all)."""


def _clip(value: Any, limit: int = 80) -> str:
    if value is None:
        return "-"
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _table(*columns: str) -> Table:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column)
    return table


def _more(parts: list[Any], rows: list[Any]) -> None:
    if len(rows) > MAX_ROWS:
        parts.append(Text(f"  ... and {len(rows) - MAX_ROWS} more (see --json)", style="dim"))


def _header(diff: dict[str, Any]) -> list[Any]:
    parts: list[Any] = []
    for label, run in (("A", diff["run_a"]), ("B", diff["run_b"])):
        line = Text(f"run {label}  {run['run_id']}  ")
        line.append(run["state"], style=STATE_STYLE.get(run["state"], "red"))
        ending = run["exit"]
        if ending["signal"]:
            line.append(f" (killed by signal {ending['signal']})")
        elif ending["code"] is not None:
            line.append(f" (exit code {ending['code']})")
        if run["verdict"] != "recorded":
            line.append(" · audited now", style="dim")
        if run["replay_of"]:
            line.append(f" · replay of {run['replay_of']}")
        line.append(f"  {_clip(run['command'], 100)}", style="dim")
        parts.append(line)
    first = diff["first_divergence"]
    if first is None:
        parts.append(Text("no divergence in steps", style="bold green"))
    else:
        step = first["step_a"] if first["step_a"] is not None else first["step_b"]
        where = f"step {step}"
        if first["step_a"] is not None and first["step_b"] is not None and first["step_a"] != first["step_b"]:
            where = f"step {first['step_a']} of A, {first['step_b']} of B"
        parts.append(Text(f"first divergence: {where} ({first['kind']}): {first['what']}", style="bold red"))
    return parts


def _steps(diff: dict[str, Any]) -> list[Any]:
    rows = [p for p in diff["steps"] if not p["same"] or p["differences"]]
    if not rows:
        return []
    same = len(diff["steps"]) - len(rows)
    table = _table("A", "B", "KIND", "NAME", "", "WHAT DIFFERS")
    for pair in rows[:MAX_ROWS]:
        if pair["step_a"] is None or pair["step_b"] is None:
            mark, what = ("+", "only in run B") if pair["step_a"] is None else ("-", "only in run A")
        else:
            mark = "≠" if not pair["same"] else "~"
            what = "; ".join(
                f"{d['field'].replace('_', ' ')}{' ' + d['path'] if d['path'] else ''}: "
                f"{_clip(d['a'], 40)} → {_clip(d['b'], 40)}"
                for d in pair["differences"]
            )
        table.add_row(
            str(pair["step_a"] or "-"), str(pair["step_b"] or "-"), pair["kind"], _clip(pair["name"], 40),
            Text(mark, style="red" if mark != "~" else "yellow"), what,
        )  # fmt: skip
    title = f"Steps: {len(diff['steps'])} aligned, {len(rows)} differ, {same} the same"
    parts: list[Any] = [Text(""), Text(title, style="bold"), table]
    _more(parts, rows)
    parts.append(
        Text("  ≠ diverges · ~ same call, different outcome · - only in A · + only in B", style="dim")
    )
    return parts


def _side(entry: dict[str, Any] | None, fields: tuple[str, ...]) -> str:
    if entry is None:
        return "-"
    return " · ".join(
        f"{f.replace('_', ' ')} {_clip(entry[f], 50)}" for f in fields if entry.get(f) is not None
    )


def _tools(diff: dict[str, Any]) -> list[Any]:
    rows = diff["tools"]
    if not rows:
        return []
    table = _table("A", "B", "TOOL", "DIFFERS", "IN A", "IN B")
    for row in rows[:MAX_ROWS]:
        a, b = row["a"], row["b"]
        shown = tuple(f for f in ("arguments", "result", "exit_code", "status") if f in row["differences"])
        shown = shown or ("arguments", "result")
        table.add_row(
            str(a["step"]) if a else "-", str(b["step"]) if b else "-", (a or b or {}).get("tool_name", "?"),
            ", ".join(row["differences"]), _side(a, shown), _side(b, shown),
        )  # fmt: skip
    parts: list[Any] = [Text(""), Text("Tool calls that differ", style="bold"), table]
    _more(parts, rows)
    return parts


def _ending(entry: dict[str, Any]) -> str:
    if entry["signal"]:
        return f"signal {entry['signal']}"
    text = "-" if entry["exit_code"] is None else f"exit {entry['exit_code']}"
    return text + (" · alive at exit" if entry["alive_at_exit"] else "")


def _processes(diff: dict[str, Any]) -> list[Any]:
    rows = diff["processes"]
    if not rows:
        return []
    table = _table("", "COMMAND IN A", "ENDED", "COMMAND IN B", "ENDED")
    for row in rows[:MAX_ROWS]:
        a, b = row["a"], row["b"]
        mark = "-" if b is None else "+" if a is None else "≠"
        table.add_row(
            mark,
            _clip(a["command_line"], 60) if a else "", _ending(a) if a else "",
            _clip(b["command_line"], 60) if b else "", _ending(b) if b else "",
        )  # fmt: skip
    parts: list[Any] = [Text(""), Text("Processes that differ", style="bold"), table]
    _more(parts, rows)
    return parts


def _file_side(entry: dict[str, Any] | None) -> str:
    if entry is None:
        return "-"
    if entry["role"] == "deleted":
        return "deleted"
    return f"{(entry['sha256'] or '?')[:12]} ({size(entry['size'])})"


def _files(diff: dict[str, Any]) -> list[Any]:
    rows = diff["files"]
    if not rows:
        return []
    table = _table("", "PATH", "IN A", "IN B")
    for row in rows[:MAX_ROWS]:
        mark = {"added": "+", "removed": "-", "changed": "≠"}[row["change"]]
        table.add_row(mark, row["path"], _file_side(row["a"]), _file_side(row["b"]))
    parts: list[Any] = [Text(""), Text("Files written that differ", style="bold"), table]
    _more(parts, rows)
    return parts


def _number(name: str, value: Any, signed: bool = False) -> str:
    if value is None:
        return "-"
    if value == 0:
        return "0"
    sign = "+" if signed and value > 0 else ""
    if name == "wall_time_s":
        return sign + duration(value) if value >= 0 else "-" + duration(-value)
    if name == "cost_usd":
        return f"{sign}${value:.4f}" if value >= 0 else f"-${-value:.4f}"
    return f"{sign}{value}"


def _deltas(diff: dict[str, Any]) -> list[Any]:
    table = _table("", "A", "B", "DELTA")
    names = {
        "input_tokens": "input tokens", "output_tokens": "output tokens", "cost_usd": "cost",
        "wall_time_s": "wall time", "steps": "steps", "llm_steps": "LLM calls", "tool_steps": "tool calls",
        "process_steps": "commands",
    }  # fmt: skip
    shown = 0
    for key, label in names.items():
        entry = diff["deltas"][key]
        if entry["a"] is None and entry["b"] is None:
            continue
        if key in ("llm_steps", "tool_steps", "process_steps") and not entry["a"] and not entry["b"]:
            continue
        shown += 1
        table.add_row(
            label,
            _number(key, entry["a"]),
            _number(key, entry["b"]),
            _number(key, entry["delta"], signed=True),
        )
    return [Text(""), Text("Deltas (B - A)", style="bold"), table] if shown else []


def _gates(diff: dict[str, Any]) -> list[Any]:
    gates = diff["gates"]
    if not gates:
        return []
    table = _table("GATE", "A", "B", "")
    for gate in gates:
        cells = [Text(s or "-", style=GATE_STYLE.get(s or "", "")) for s in (gate["a"], gate["b"])]
        table.add_row(gate["name"], *cells, Text("differs", style="bold red") if not gate["same"] else "")
    differ = [g["name"] for g in gates if not g["same"]]
    title = "Gates: " + (f"{len(differ)} differ ({', '.join(differ)})" if differ else "the same")
    parts: list[Any] = [Text(""), Text(title, style="bold"), table]
    for label, run in (("A", diff["run_a"]), ("B", diff["run_b"])):
        for reason in run["reasons"][:5]:
            parts.append(Text(f"  {label}: {reason}"))
        if len(run["reasons"]) > 5:
            parts.append(Text(f"  {label}: ... and {len(run['reasons']) - 5} more"))
    return parts


def diff_view(diff: dict[str, Any]) -> Group:
    """The terminal form of `analysis.diff.diff_runs`'s answer."""
    return Group(
        *_header(diff), *_steps(diff), *_tools(diff), *_processes(diff), *_files(diff), *_deltas(diff),
        *_gates(diff),
    )  # fmt: skip
