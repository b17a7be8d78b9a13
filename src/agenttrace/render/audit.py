"""The human view of an audit: each gate's status and first reasons, then the verdict line."""

from __future__ import annotations

from rich.console import Group
from rich.table import Table
from rich.text import Text

from ..audit.verdict import Verdict

STYLE = {"pass": "green", "fail": "red", "n/a": "dim"}


def verdict_table(verdict: Verdict) -> Group:
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("GATE", "STATUS", "SEVERITY", "REASONS"):
        table.add_column(column)
    for result in verdict.gates:
        reasons = [str(v["reason"]) for v in result.violations[:3]]
        if len(result.violations) > 3:
            reasons.append(f"... and {len(result.violations) - 3} more")
        status = result.status.upper() if result.status != "n/a" else "n/a"
        if result.status == "fail" and result.gate.severity == "warn":
            status = "WARN"
        table.add_row(
            result.gate.name,
            Text(status, style=STYLE[result.status]),
            result.gate.severity,
            "\n".join(reasons) or result.gate.description,
        )
    ending = (
        f"killed by signal {verdict.signal}" if verdict.signal else
        f"exit code {verdict.exit_code}" if verdict.exit_code is not None else "no exit code"
    )  # fmt: skip
    line = Text(f"Run {verdict.run_id}: {verdict.state.upper()} ({ending})", style="bold")
    line.stylize("green" if verdict.succeeded else "red")
    parts: list[Text | Table] = [table, Text(""), line]
    unrecorded = verdict.unrecorded_gates
    if verdict.gates_recorded and unrecorded:
        parts.append(
            Text(
                f"  not the run's recorded gates (added with --gates): {', '.join(unrecorded)}",
                style="yellow",
            )
        )
    if verdict.updated_gates:
        parts.append(
            Text(
                "  built-in gates changed since the run was recorded, audited with this version's: "
                + ", ".join(verdict.updated_gates),
                style="yellow",
            )
        )
    if not verdict.gates_recorded and verdict.supervised:
        parts.append(
            Text(
                "  the gate set the run recorded is gone with its records: audited with the gates of "
                "this version",
                style="yellow",
            )
        )
    elif not verdict.gates_recorded:
        parts.append(
            Text(
                "  the run recorded no gate set (not run under `agenttrace run`): audited with the "
                "gates of this version",
                style="dim",
            )
        )
    parts += [Text(f"  - {reason}") for reason in verdict.reasons[:10]]
    if len(verdict.reasons) > 10:
        parts.append(Text(f"  ... and {len(verdict.reasons) - 10} more"))
    return Group(*parts)


def verdicts_table(verdicts: list[Verdict], errors: list[tuple[str, str]]) -> Group:
    """`audit --all`: a line per run (state, failing gates), then the totals."""
    table = Table(box=None, pad_edge=False, header_style="bold")
    for column in ("RUN", "STATE", "FAILED GATES", "FIRST REASON"):
        table.add_column(column)
    for verdict in verdicts:
        failed = [g.gate.name for g in verdict.gates if g.status == "fail" and g.gate.severity == "error"]
        state = Text(verdict.state.upper(), style="green" if verdict.succeeded else "red")
        table.add_row(verdict.run_id, state, ", ".join(failed), verdict.reasons[0] if verdict.reasons else "")
    for run_id, error in errors:
        table.add_row(run_id, Text("ERROR", style="red"), "", error)
    ok = sum(v.succeeded for v in verdicts)
    line = f"{len(verdicts) + len(errors)} runs: {ok} succeeded, {len(verdicts) - ok} not"
    if errors:
        line += f", {len(errors)} could not be audited"
    return Group(table, Text(""), Text(line, style="bold"))
