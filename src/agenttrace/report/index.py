"""`agenttrace report --runs`: an index page of the store's runs (state, duration, tokens, failing
gates), each linking to its own report, written next to the index."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from .. import __version__
from ..analysis.run_list import list_runs
from ..errors import AgentTraceError, ConfigError
from ..store.layout import StoreLayout
from .document import build_document
from .html import asset, page, report_page
from .limits import Limits
from .write import IndexInfo, ReportInfo, _info, default_name, write_atomically

INDEX_NAME = "agenttrace-runs.html"


def write_index(
    layout: StoreLayout, out: Path | None, since: float | None, states: list[str] | None, limits: Limits
) -> IndexInfo:
    """Each listed run's report, then the index linking to them (relative links: the folder can be
    moved or attached whole). A run that cannot be read is listed with its error, unlinked."""
    target = Path(out) if out is not None else Path(INDEX_NAME)
    folder = target.parent
    if not folder.is_dir():
        raise ConfigError(f"cannot write the index to {target}: {folder} is not a directory")
    rows, warnings = list_runs(layout)
    if since is not None:
        cutoff = datetime.now(UTC) - timedelta(seconds=since)
        rows = [r for r in rows if r["started"] is not None and r["started"] >= cutoff]
    listed: list[dict[str, Any]] = []
    reports: list[ReportInfo] = []
    for row in rows:
        run_id = row["run_id"]
        try:
            document, run_warnings = build_document(layout, run_id, limits)
        except AgentTraceError as exc:
            if states and "error" not in states:
                continue
            listed.append({**_row(row), "state": "error", "error": str(exc), "report": None})
            warnings.append(f"run {run_id}: {exc}")
            continue
        state = document["verdict"]["state"]
        if states and state not in states:
            continue
        name = default_name(run_id)
        size = write_atomically(folder / name, report_page(document))
        reports.append(_info(document, str(folder / name), size, run_warnings))
        warnings += run_warnings
        listed.append(
            {
                **_row(row),
                "state": state,
                "tokens": document["tokens"]["total"]["tokens"],
                "cost_usd": document["tokens"]["total"]["cost_usd"],
                "steps": document["steps"]["of"],
                "failing_gates": [g["name"] for g in document["verdict"]["gates"] if g["status"] == "fail"],
                "report": name,
            }
        )
    document = {
        "generator": f"agenttrace {__version__}",
        "generated_at": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        "store": str(layout.root),
        "since_s": since,
        "states": states,
        "runs": listed[::-1],  # the newest first
    }
    text = page("index.html", asset("index.js"), asset("report.css"), document, "agenttrace runs")
    size = write_atomically(target, text)
    return IndexInfo(str(target), size, reports, warnings)


def _row(row: dict[str, Any]) -> dict[str, Any]:
    return {
        "run_id": row["run_id"],
        "name": row["name"],
        "started": row["started"],
        "duration_s": row["duration_s"],
        "exit_code": row["exit_code"],
        "recorded_state": row["state"],
    }
