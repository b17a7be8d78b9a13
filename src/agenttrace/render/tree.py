"""The tree of `agenttrace show`: every span under its parent, with step, duration and status."""

from __future__ import annotations

from typing import Any

from rich.console import Group
from rich.text import Text
from rich.tree import Tree

from .runs import state_text
from .values import clock, duration, moment


def run_header(run: dict[str, Any]) -> Text:
    text = Text()
    text.append(f"Run {run['run_id']}", style="bold")
    text.append(f"  {run['name'] or ''}  ")
    text.append_text(state_text(run["state"]))
    details = [f"started {moment(run['started'])}", f"duration {duration(run['duration_s'])}"]
    details.append(f"{run['span_count']} spans")
    if run["error_count"]:
        details.append(f"{run['error_count']} with errors")
    if run["unfinished_count"]:
        details.append(f"{run['unfinished_count']} unfinished")
    if run.get("exit_code") is not None:
        details.append(f"exit code {run['exit_code']}")
    if run.get("signal"):
        details.append(f"signal {run['signal']}")
    text.append("\n" + " · ".join(details), style="dim")
    return text


def span_label(
    span: dict[str, Any], orphaned: bool = False, gpu_uses: list[dict[str, Any]] | None = None
) -> Text:
    label = Text()
    if span["step"] is not None:
        label.append(f"#{span['step']} ", style="bold cyan")
        label.append(f"{span['step_kind']} ", style="cyan")
    label.append(span["name"], style="bold")
    if span.get("claim_text"):
        label.append(f' "{span["claim_text"]}"')
    if span["ended"]:
        label.append(f"  {duration((span['duration_ms'] or 0) / 1000)}", style="dim")
        if span["status_code"] == "Error":
            label.append("  error", style="bold red")
            if span["status_message"]:
                label.append(f": {span['status_message']}", style="red")
        else:
            label.append("  ok", style="green")
    else:
        label.append(f"  UNFINISHED: started {clock(span['start_time'])}, never ended", style="bold yellow")
    if span["finish_reason"]:
        label.append(f"  finish: {span['finish_reason']}", style="dim")
    if span["exit_code"] is not None:
        label.append(f"  exit {span['exit_code']}", style="red" if span["exit_code"] else "dim")
    if gpu_uses:
        from .gpu import process_marks

        label.append_text(process_marks(gpu_uses))
    if span["exception"] and span["exception"] != span["status_message"]:
        label.append(f"\n{span['exception']}", style="red")
    if orphaned:
        label.append(f"  (parent {span['parent_span_id']} is not in this run)", style="yellow")
    return label


def _break_cycles(spans: list[dict[str, Any]], children: dict[str | None, list[dict[str, Any]]]) -> None:
    """Spans whose parents form a ring are reachable from no root: draw the earliest of each ring at
    the top, so that no span goes undrawn (a process is drawn under the span its TRACEPARENT named,
    which is the agent's word)."""
    reached: set[str] = set()
    todo: list[str | None] = [None]
    while True:
        while todo:
            for child in children.get(todo.pop(), []):
                if child["span_id"] not in reached:
                    reached.add(child["span_id"])
                    todo.append(child["span_id"])
        stranded = next((s for s in spans if s["span_id"] not in reached), None)
        if stranded is None:
            return
        children[stranded["parent_span_id"]].remove(stranded)
        children.setdefault(None, []).append(stranded)
        reached.add(stranded["span_id"])
        todo.append(stranded["span_id"])


def span_tree(
    run: dict[str, Any],
    spans: list[dict[str, Any]],
    limit: int,
    claims: list[dict[str, Any]] | None = None,
    gpu: dict[str, Any] | None = None,
) -> Group:
    """The run header and its span tree (at most `limit` spans drawn), then its GPU use (`gpu`, from
    `analysis.gpu_use.run_gpu_use`: marks on the processes seen on a GPU, the lease, intruders),
    then its claims."""
    marks: dict[str, list[dict[str, Any]]] = {}
    if gpu is not None:
        from .gpu import marks_by_span

        marks = marks_by_span(gpu["processes"])
    ids = {s["span_id"] for s in spans}
    children: dict[str | None, list[dict[str, Any]]] = {}
    for span in spans:
        parent = span["parent_span_id"] if span["parent_span_id"] in ids else None
        children.setdefault(parent, []).append(span)
    _break_cycles(spans, children)
    root = Tree(run_header(run), guide_style="dim")
    drawn = 0
    stack: list[tuple[Tree, dict[str, Any]]] = [(root, s) for s in reversed(children.get(None, []))]
    while stack and drawn < limit:
        node, span = stack.pop()
        orphaned = span["parent_span_id"] is not None and span["parent_span_id"] not in ids
        branch = node.add(span_label(span, orphaned, marks.get(span["span_id"])))
        drawn += 1
        stack.extend((branch, c) for c in reversed(children.get(span["span_id"], [])))
    parts: list[Any] = [root]
    if drawn < len(spans):
        parts.append(
            Text(
                f"… {len(spans) - drawn} more spans not drawn (use --limit, or `agenttrace query`)",
                style="dim",
            )
        )
    if gpu is not None:
        from .gpu import gpu_lines

        parts.extend(gpu_lines(gpu))
    if claims:
        from .claims import claim_lines

        parts.append(Text(f"Claims ({len(claims)}):", style="bold"))
        parts.extend(claim_lines(claims))
    return Group(*parts)
