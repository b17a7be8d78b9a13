"""One run collected into the JSON document a report page is drawn from, through the library the
commands use: the verdict as `agenttrace audit` decides it, the steps as `agenttrace step` gives
them, the process tree, claims, the objective's checks, tokens and cost, GPU use, the environment.

The verdict (state, gates, reasons) is agenttrace's own: computed here from the gates the run
recorded, never read from anything the agent wrote. Agent-written text (span names, inputs,
outputs) is carried as data, for the page to show as text."""

from __future__ import annotations

import contextlib
import json
from bisect import bisect_left
from datetime import UTC, datetime
from typing import Any

from .. import __version__
from ..analysis.derived import run_database
from ..analysis.step import _parsed
from ..clickhouse.engine import Engine
from ..errors import CorruptPartError
from ..store.layout import StoreLayout
from .limits import DEFAULT_LIMITS, Limits
from .timeline import build_timeline, epoch_ms, gpu_rows

ENVIRONMENT_KEYS = (
    "process.working_directory",
    "process.command_line",
    "process.runtime.name",
    "process.runtime.version",
    "host.name",
    "os.type",
    "vcs.ref.head.revision",
    "agenttrace.git.dirty",
    "agenttrace.watcher.mode",
    "agenttrace.gpu.sampling",
    "agenttrace.supervisor.pid",
)
"""What the environment section shows of the root span's attributes (argv and packages aside)."""

PACKAGES_SHOWN = ("agenttrace_audit", "opentelemetry_sdk", "opentelemetry_api", "duckdb", "pyarrow")
"""Packages named first in the environment; the rest are listed after them."""


def build_document(
    layout: StoreLayout, run_id: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], list[str]]:
    """The run's report document, and the warnings reading it gave. Raises what the reads raise
    (RunNotFoundError, StoreError, QueryError, ConfigError for a broken gate)."""

    def work(db: Any) -> tuple[dict[str, Any], list[str]]:
        return _collect(db, run_id, limits), list(db.warnings)

    document, warnings = run_database(layout, run_id, work, verify=True)
    corrupt = [w for w in warnings if w.startswith("skipped corrupt part")]
    if corrupt:  # a page without some of the run's records would look whole: refuse it
        raise CorruptPartError(
            f"run {run_id}: {corrupt[0]}; a report would leave its records out "
            f"(`agenttrace audit {run_id}` says what its integrity check finds)"
        )
    return document, warnings


def build_remote_document(
    engine: Engine, layout: StoreLayout, run: str, limits: Limits = DEFAULT_LIMITS
) -> tuple[dict[str, Any], list[str]]:
    """The report document of a run on another engine (ClickHouse), and the warnings."""
    from ..analysis.engines import on_run

    _, found = on_run(
        engine, layout, run, lambda db, run_id: (_collect(db, run_id, limits), list(db.warnings))
    )
    return found


def _collect(db: Any, run_id: str, limits: Limits) -> dict[str, Any]:
    from ..audit.gates import audit_gates
    from ..audit.verdict import audit

    recorded = db.report("recorded_gates", run_id=run_id)
    gates = audit_gates(recorded[0]["recorded_gates"] if recorded else None, None)
    verdict = audit(db, run_id, gates)  # materializes the views: every read below is cheap

    runs = db.report("report_run", run_id=run_id)
    run = runs[0] if runs else {"run_id": run_id}
    steps = db.report("report_steps", run_id=run_id, max_steps=limits.steps, cut=limits.text_chars)
    step_count = steps[0]["of"] if steps else 0
    _decided_by(db, run_id, steps)

    t0 = epoch_ms(run.get("started"))
    bars = db.report("report_bars", run_id=run_id)
    gpu = db.report("report_gpu", run_id=run_id, gap_s=5.0)
    bars += gpu_rows(gpu)
    starts = [epoch_ms(b["start_time"]) for b in bars if b["start_time"] is not None]
    ends = [epoch_ms(b["end_time"]) for b in bars if b["end_time"] is not None]
    if t0 is None:
        t0 = min(starts, default=0.0)
    end = epoch_ms(run.get("ended")) or max([*ends, *starts, t0])
    end = max([end, *ends])
    named = {v["span_id"] for g in verdict.gates for v in g.violations if v.get("span_id")}
    timeline = build_timeline(bars, t0, end, limits.bars, named)

    processes = db.report("report_processes", run_id=run_id, max_processes=limits.tree_nodes)
    claims = db.report("claims", run_id=run_id, step=None)
    verifications = db.report("report_verifications", run_id=run_id)
    files = db.report("report_files", run_id=run_id, max_files=limits.files)
    tokens = db.report("report_tokens", run_id=run_id)[0]

    shown = {s["span_id"] for s in steps} | {p["span_id"] for p in processes}
    shown |= {v["span_id"] for v in verifications} | {c["span_id"] for c in claims[: limits.claims]}
    others = sorted(named - shown)
    spans = db.report("report_spans", run_id=run_id, span_ids=others) if others else []

    objective = _objective(run.get("objective_json"), verifications, verdict)
    document = {
        "format": 1,
        "generator": f"agenttrace {__version__}",
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "run": _run_header(run, verdict),
        "verdict": _verdict(verdict),
        "limits": {
            **limits.as_json(),
            "applied": {
                "steps": step_count > limits.steps,
                "bars": timeline["aggregated"],
                "tree_nodes": bool(processes) and processes[0]["of"] > limits.tree_nodes,
                "files": bool(files) and files[0]["of"] > limits.files,
                "claims": len(claims) > limits.claims,
                "text": any(
                    (s["input_chars"] or 0) > limits.text_chars
                    or (s["output_chars"] or 0) > limits.text_chars
                    for s in steps
                ),
            },
        },
        "steps": {"of": step_count, "items": [_step(s, limits) for s in steps]},
        "timeline": timeline,
        "processes": {
            "of": processes[0]["of"] if processes else 0,
            "items": _tree(processes),
        },
        "claims": {"of": len(claims), "items": [_claim(c) for c in claims[: limits.claims]]},
        "objective": objective,
        "tokens": {"total": tokens, "steps": [_tokens(s) for s in steps if s["kind"] == "llm"]},
        "environment": _environment(run),
        "files": {"of": files[0]["of"] if files else 0, "items": files},
        "spans": spans,
        "gpu": gpu,
    }
    cut = cut_strings(document, limits.other_chars)
    document["limits"]["applied"]["other_text"] = cut > 0
    return document


CUT_MARK = " … [cut: {shown:,} of {chars:,} characters]"


def cut_strings(value: Any, limit: int) -> int:
    """Cut, in place, every string of `value` longer than `limit` characters to its first `limit`
    and a mark; the inputs and outputs of steps (`{"value", "chars", "cut"}`, already cut to
    `text_chars`) are left as they are. An agent's 1 MB span name must not make a 100 MB page.
    The number of strings cut."""
    cut = 0
    items: Any
    if isinstance(value, dict):
        if set(value) == {"value", "chars", "cut"}:
            return 0
        items = value.items()
    elif isinstance(value, list):
        items = enumerate(value)
    else:
        return 0
    for key, item in list(items):
        if isinstance(item, str):
            if len(item) > limit:
                value[key] = item[:limit] + CUT_MARK.format(shown=limit, chars=len(item))
                cut += 1
        else:
            cut += cut_strings(item, limit)
    return cut


def _run_header(run: dict[str, Any], verdict: Any) -> dict[str, Any]:
    keys = (
        "run_id", "name", "started", "ended", "duration_s", "agent_duration_s", "exit_code", "signal",
        "command", "span_count", "unfinished_count", "error_count", "root_span_id", "service_name",
        "supervised",
    )  # fmt: skip
    header = {k: run.get(k) for k in keys}
    header["recorded_state"] = run.get("state")
    header["state"] = verdict.state  # the audit's, as `agenttrace audit` decides it
    return header


def _verdict(verdict: Any) -> dict[str, Any]:
    return {
        "state": verdict.state,
        "succeeded": verdict.succeeded,
        "exit": {"code": verdict.exit_code, "signal": verdict.signal},
        "reasons": verdict.reasons,
        "gates_recorded": verdict.gates_recorded,
        "supervised": verdict.supervised,
        "unrecorded_gates": verdict.unrecorded_gates,
        "updated_gates": verdict.updated_gates,
        "gates": [
            {
                "name": g.gate.name,
                "status": g.status,
                "severity": g.gate.severity,
                "description": g.gate.description,
                "violations": g.violations,
            }
            for g in sorted(verdict.gates, key=lambda g: (g.status != "fail", g.gate.name))
        ],
    }


# How far back, and how deep, the report looks for the LLM step that asked for a tool call: the
# LLM outputs are the agent's words and may be megabytes each; searching every earlier output
# whole for every tool step grew as steps x steps x output size.
DECIDED_BY_LOOKBACK = 64
DECIDED_BY_CHARS = 1 << 16


def _decided_by(db: Any, run_id: str, steps: list[dict[str, Any]]) -> None:
    """Each non-LLM step's `decided_by`, as `step_decided_by.sql` finds it: the latest earlier LLM
    step whose output holds the step's tool call id, else the closest earlier LLM step. Bounded:
    only the `DECIDED_BY_LOOKBACK` closest earlier LLM steps, and the first `DECIDED_BY_CHARS` of
    each output, are searched (`agenttrace step` searches them all)."""
    if not steps:
        return
    llm = db.report(
        "report_llm_outputs", run_id=run_id, max_step=steps[-1]["step"], max_chars=DECIDED_BY_CHARS
    )
    numbers = [r["step"] for r in llm]
    heads = [r["output"] or "" for r in llm]
    for step in steps:
        step["decided_by"] = None
        if step["kind"] == "llm":
            continue
        before = bisect_left(numbers, step["step"])  # llm[:before] are the earlier LLM steps
        if not before:
            continue
        call_id = step["tool_call_id"]
        if call_id:
            for i in range(before - 1, max(before - 1 - DECIDED_BY_LOOKBACK, -1), -1):
                if call_id in heads[i]:
                    step["decided_by"] = {
                        "step": llm[i]["step"],
                        "span_id": llm[i]["span_id"],
                        "reason": f"its output asked for this tool call (id {call_id})",
                    }
                    break
        if step["decided_by"] is None:
            row = llm[before - 1]
            step["decided_by"] = {
                "step": row["step"],
                "span_id": row["span_id"],
                "reason": "the closest earlier LLM step",
            }


def _text(value: str | None, chars: int | None, limit: int) -> dict[str, Any] | None:
    if value is None:
        return None
    cut = (chars or 0) > limit
    shown: Any = value if cut else _parsed(value)
    return {"value": shown, "chars": chars, "cut": cut}


def _step(row: dict[str, Any], limits: Limits) -> dict[str, Any]:
    status = "unfinished" if not row["ended"] else ("error" if row["status_code"] == "Error" else "ok")
    step = {
        k: row[k]
        for k in (
            "step",
            "kind",
            "name",
            "span_id",
            "parent_span_id",
            "start_time",
            "end_time",
            "duration_ms",
            "status_message",
            "model",
            "tool_name",
            "tool_call_id",
            "finish_reason",
            "input_tokens",
            "output_tokens",
            "cost_usd",
            "exit_code",
            "command",
            "decided_by",
        )
    }
    step["status"] = status
    step["input"] = _text(row["input"], row["input_chars"], limits.text_chars)
    step["output"] = _text(row["output"], row["output_chars"], limits.text_chars)
    return step


def _tokens(step: dict[str, Any]) -> dict[str, Any]:
    return {
        k: step[k] for k in ("step", "span_id", "name", "model", "input_tokens", "output_tokens", "cost_usd")
    }


def _tree(processes: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The processes with `parent`: the span of the process that started each (by its parent span,
    else its parent pid among the processes started before it), None at the top."""
    by_span = {p["span_id"]: p for p in processes}
    by_pid: dict[int, str] = {}
    items = []
    for p in processes:
        parent = p["parent_span_id"] if p["parent_span_id"] in by_span else by_pid.get(p["parent_pid"])
        if parent == p["span_id"]:
            parent = None
        items.append(
            {
                "span_id": p["span_id"],
                "parent": parent,
                "pid": p["pid"],
                "parent_pid": p["parent_pid"],
                "executable": p["executable"],
                "command_line": p["command_line"],
                "start_time": p["start_time"],
                "end_time": p["end_time"],
                "exit_code": p["exit_code"],
                "signal": p["signal"],
                "orphaned": bool(p["alive_at_exit"]),
                "ended": bool(p["ended"]),
                # the agent's own span about a process (its command line, times): its word
                "reported_by_agent": p.get("origin") == "agent",
            }
        )
        if p["pid"] is not None:
            by_pid[p["pid"]] = p["span_id"]
    return items


def _claim(row: dict[str, Any]) -> dict[str, Any]:
    evidence = row["evidence"] or []
    ok = bool(evidence) and all(e.get("resolved") for e in evidence)
    return {**row, "status": "ok" if ok else "failed"}


def _objective(text: str | None, verifications: list[dict[str, Any]], verdict: Any) -> dict[str, Any] | None:
    if not text:
        return None
    try:
        spec = json.loads(text)
    except ValueError:
        return None
    latest: dict[tuple[str, str], dict[str, Any]] = {}
    for v in verifications:
        latest[(v["type"] or "", v["id"] or v["path"] or "")] = v
    criteria = []
    for c in spec.get("criteria") or []:
        check = latest.get(("criterion", c.get("id") or ""))
        criteria.append({**c, "status": _checked(check), "check": check})
    deliverables = []
    for d in spec.get("deliverables") or []:
        check = next(
            (
                v
                for v in reversed(verifications)
                if v["type"] == "deliverable" and (v["path"] or "").endswith(str(d.get("path")))
            ),
            None,
        )
        deliverables.append({**d, "status": _checked(check), "check": check})
    return {
        "goal": spec.get("goal"),
        "scope": spec.get("scope"),
        "limits": spec.get("limits"),
        "source": spec.get("source"),
        "sha256": spec.get("sha256"),
        "criteria": criteria,
        "deliverables": deliverables,
        "evidence": [v for v in verifications if v["type"] == "evidence"],
    }


def _checked(check: dict[str, Any] | None) -> str:
    if check is None:
        return "unverified"
    if check.get("skipped"):
        return "skipped"
    return "pass" if check.get("passed") else "fail"


def _environment(run: dict[str, Any]) -> dict[str, Any]:
    attrs = run.get("root_attributes") or {}
    argv: Any = attrs.get("process.command_args")
    with contextlib.suppress(ValueError):
        argv = json.loads(argv) if argv else None
    packages: dict[str, Any] = {}
    with contextlib.suppress(ValueError):
        packages = json.loads(attrs.get("agenttrace.python.packages") or "{}")
    if not isinstance(packages, dict):
        packages = {}
    first = {k: packages[k] for k in PACKAGES_SHOWN if k in packages}
    return {
        "argv": argv,
        "attributes": {k: attrs[k] for k in ENVIRONMENT_KEYS if k in attrs},
        "resource": run.get("root_resource") or {},
        "packages": {**first, **{k: v for k, v in sorted(packages.items()) if k not in first}},
        "report_by": f"agenttrace {__version__}",
    }
