"""What happened at step N of a run, and why (DESIGN.md, "Steps")."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from ..errors import QueryError
from .gpu_use import step_gpu_use

if TYPE_CHECKING:
    from .database import Database
    from .derived import DerivedDatabase


def _parsed(text: Any) -> Any:
    """Inputs and outputs are stored as text; JSON ones are given back as JSON."""
    if isinstance(text, str) and text[:1] in "[{":
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


def explain_step(db: Database | DerivedDatabase, run_id: str, n: int) -> dict[str, Any]:
    """The step, what asked for it, what ran under it, its errors, what came next, and its GPU use
    (`gpu`: None for a run without GPU records; see `gpu_use.step_gpu_use`).
    Raises QueryError for a step the run does not have."""
    params = {"run_id": run_id, "step": n}
    db.materialize()  # five reports over the same views: compute them once
    rows = db.report("step", **params)
    if not rows:
        total = db.report("step_next", **params)[0]["steps"] or 0
        steps = f"its steps are 1 to {total}" if total else "it has no steps"
        raise QueryError(f"run {run_id} has no step {n}: {steps}")
    row = rows[0]
    decided = db.report("step_decided_by", **params) if row["kind"] != "llm" else []
    following = db.report("step_next", **params)[0]
    children = db.report("step_children", **params)
    answer: dict[str, Any] = {
        "run_id": run_id,
        "step": row["step"],
        "of": following["steps"],
        "kind": row["kind"],
        "name": row["name"],
        "span_id": row["span_id"],
        "start_time": row["start_time"],
        "end_time": row["end_time"],
        "duration_ms": row["duration_ms"],
        "status": "unfinished" if not row["ended"] else ("error" if row["status_code"] == "Error" else "ok"),
        "status_message": row["status_message"],
        "input": _parsed(row["input"]),
        "output": _parsed(row["output"]),
        "decided_by": decided[0] if decided else None,
        "children": children,
        "errors": db.report("step_errors", **params),
        "claims": db.report("claims", **params),
        "next_step": (
            {k: following[k] for k in ("step", "kind", "name", "span_id")}
            if following["step"] is not None
            else None
        ),
        "gpu": step_gpu_use(db, run_id, row["step"], children),
    }
    if row["kind"] == "tool":
        answer |= {"tool_name": row["tool_name"], "tool_call_id": row["tool_call_id"]}
    if row["kind"] == "llm":
        answer |= {
            "model": row["model"],
            "finish_reason": row["finish_reason"],
            "input_tokens": row["input_tokens"],
            "output_tokens": row["output_tokens"],
        }
        exchange = db.report("step_exchange", **params)
        answer["exchange"] = exchange[0] if exchange else None  # --record: the request and answer kept
    return answer
