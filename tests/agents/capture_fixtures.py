"""Record the OTLP that each real CLI agent sends in one happy-path session, as small JSON fixtures.

    .venv/bin/python tests/agents/capture_fixtures.py [claude codex gemini] [--scenario happy]

For each CLI: runs it offline (`cli_agents.run_cli_agent`) with its telemetry sent as OTLP/JSON to
the capture server, then writes tests/agents/captures/<cli>/:

- `traces.json`, `logs.json`, `metrics.json`: the export requests the CLI sent, as it sent them
  (OTLP/JSON bodies, in arrival order), trimmed: string values longer than 1,500 characters are cut
  (system prompts, tool definitions), and Codex's ~500 internal spans (`fs.*`, config loading,
  tool-router building...) are dropped except those on the path from the root to a span that
  matters (model calls, tool calls, turns). What was dropped is listed in `session.json`.
- `session.json`: the CLI, its npm version, the command line, environment and config files of the
  recipe, its exit code and JSON output, and what the fake model server saw and billed.

Paths of this machine are replaced by `$WORKDIR`, `$HOME` and `$REPO`. The CLIs must be installed
(`make agents`).
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from cli_agents import CLIS, PACKAGES, REPO, run_cli_agent
from otlp_capture import OtlpCaptureServer

CAPTURES = Path(__file__).resolve().parent / "captures"
MAX_STRING = 1500

CODEX_KEPT_SPANS = {
    "codex.exec",
    "thread/start",
    "turn/start",
    "session_task.turn",
    "run_turn",
    "codex.sampling",
    "model_client.stream_responses_api",
    "handle_responses",
    "exec_command",
    "unified_exec.exec_command",
    "handle_tool_call",
    "codex.turn_input",
}
"""The Codex spans that matter (with their ancestors); the rest of its ~500 spans are dropped."""

CODEX_KEPT_METRICS = (
    "codex.api_request",
    "codex.tool.",
    "codex.turn.",
    "codex.conversation.",
    "codex.thread.started",
    "codex.process.start",
)
"""Prefixes of the Codex metrics kept; the other ~40 (sqlite, skills, plugins...) are dropped."""


def _trim_strings(value: Any) -> Any:
    if isinstance(value, str) and len(value) > MAX_STRING:
        return value[:MAX_STRING] + f"...[{len(value) - MAX_STRING} more characters cut]"
    if isinstance(value, dict):
        return {k: _trim_strings(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_trim_strings(v) for v in value]
    return value


def _keep_codex_spans(bodies: list[dict[str, Any]]) -> Counter[str]:
    """Drop Codex's internal spans in place, keeping CODEX_KEPT_SPANS and their ancestors.
    Returns how many spans of each name were dropped."""
    spans = [
        span
        for body in bodies
        for resource in body.get("resourceSpans", ())
        for scope in resource.get("scopeSpans", ())
        for span in scope.get("spans", ())
    ]
    by_id = {span["spanId"]: span for span in spans}
    kept: set[str] = set()
    for span in spans:
        if span["name"] in CODEX_KEPT_SPANS:
            current: dict[str, Any] | None = span
            while current is not None and current["spanId"] not in kept:
                kept.add(current["spanId"])
                current = by_id.get(current.get("parentSpanId") or "")
    dropped: Counter[str] = Counter()
    for body in bodies:
        for resource in body.get("resourceSpans", ()):
            for scope in resource.get("scopeSpans", ()):
                dropped.update(s["name"] for s in scope.get("spans", ()) if s["spanId"] not in kept)
                scope["spans"] = [s for s in scope.get("spans", ()) if s["spanId"] in kept]
    return dropped


def _keep_codex_metrics(bodies: list[dict[str, Any]]) -> Counter[str]:
    """Drop Codex's internal metrics in place; returns the names dropped."""
    dropped: Counter[str] = Counter()
    for body in bodies:
        for resource in body.get("resourceMetrics", ()):
            for scope in resource.get("scopeMetrics", ()):
                metrics = scope.get("metrics", ())
                dropped.update(m["name"] for m in metrics if not m["name"].startswith(CODEX_KEPT_METRICS))
                scope["metrics"] = [m for m in metrics if m["name"].startswith(CODEX_KEPT_METRICS)]
    return dropped


def _dumps(data: Any) -> str:
    """Indented JSON, with arrays of numbers (histogram buckets and bounds) kept on one line."""
    text = json.dumps(data, indent=1, ensure_ascii=False)
    return re.sub(
        r"\[\s*(-?[0-9][0-9.eE+-]*(?:,\s*-?[0-9][0-9.eE+-]*)*)\s*\]",
        lambda m: "[" + re.sub(r",\s*", ", ", m.group(1)) + "]",
        text,
    )


def _anonymize(text: str, replacements: dict[str, str]) -> str:
    for old, new in sorted(replacements.items(), key=lambda kv: -len(kv[0])):
        text = text.replace(old, new)
    return text


def capture(name: str, scenario: str) -> dict[str, Any]:
    out = CAPTURES / name
    scratch = Path(tempfile.mkdtemp(prefix=f"agenttrace-capture-{name}-"))
    try:
        workdir, home = scratch / "work", scratch / "home"
        with OtlpCaptureServer() as otlp:
            run = run_cli_agent(name, scenario, workdir, otlp.url, protocol="json", home=home)
            time.sleep(0.5)  # a last in-flight export
            captures = [c for c in otlp.captures if c.signal]
            otlp_url = otlp.url
        if run.returncode != 0:
            raise SystemExit(run.describe())
        bodies = {
            signal: [c.body for c in captures if c.signal == signal]
            for signal in ("traces", "logs", "metrics")
        }
        counts = {
            "spans": sum(
                len(s.get("spans", ()))
                for b in bodies["traces"]
                for r in b.get("resourceSpans", ())
                for s in r.get("scopeSpans", ())
            ),
            "log_records": sum(
                len(s.get("logRecords", ()))
                for b in bodies["logs"]
                for r in b.get("resourceLogs", ())
                for s in r.get("scopeLogs", ())
            ),
            "metrics": sum(
                len(s.get("metrics", ()))
                for b in bodies["metrics"]
                for r in b.get("resourceMetrics", ())
                for s in r.get("scopeMetrics", ())
            ),
        }
        dropped = _keep_codex_spans(bodies["traces"]) if name == "codex" else Counter()
        dropped_metrics = _keep_codex_metrics(bodies["metrics"]) if name == "codex" else Counter()
        replacements = {
            str(workdir): "$WORKDIR",
            str(home): "$HOME",
            str(scratch): "$TMP",
            str(REPO): "$REPO",
            otlp_url: "$OTLP",
        }
        session = {
            "cli": name,
            "package": PACKAGES[name],
            "version": run.version,
            "scenario": scenario,
            "argv": [Path(run.argv[0]).name, *run.argv[1:]],
            "env": run.env,
            "config_files": run.files,
            "returncode": run.returncode,
            "duration_s": round(run.duration_s, 2),
            "output": run.output,
            "model_server": {
                "exchanges": [e.summary() for e in run.server.requests],
                "billed": run.server.billed(),
            },
            "otlp_requests": [
                {
                    "path": c.path,
                    "content_type": c.content_type,
                    "headers": {k: v for k, v in c.headers.items() if k != "content-length"},
                }
                for c in captures
            ],
            "received": counts,
            "dropped_spans": dict(dropped.most_common()),
            "dropped_metrics": sorted(dropped_metrics),
            "trimmed": f"string values over {MAX_STRING} characters are cut",
        }
        out.mkdir(parents=True, exist_ok=True)
        files = {"session.json": session, **{f"{signal}.json": body for signal, body in bodies.items()}}
        sizes = {}
        for filename, data in files.items():
            text = _anonymize(_dumps(_trim_strings(data)), replacements)
            text = text.replace(run.server.url, "$MODEL_URL")
            (out / filename).write_text(text + "\n")
            sizes[filename] = len(text)
        return {
            "cli": name,
            "version": run.version,
            "duration_s": round(run.duration_s, 2),
            "counts": counts,
            "sizes": sizes,
        }
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("clis", nargs="*", help=f"some of {', '.join(CLIS)} (default: all)")
    parser.add_argument("--scenario", default="happy")
    args = parser.parse_args(argv)
    unknown = set(args.clis) - set(CLIS)
    if unknown:
        parser.error(f"unknown CLI: {', '.join(sorted(unknown))}")
    for name in args.clis or CLIS:
        print(json.dumps(capture(name, args.scenario)))


if __name__ == "__main__":
    main()
