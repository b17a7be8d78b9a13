"""Writing report files: whole or not at all (a temporary file in the same folder, then a rename)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..analysis import resolve_run
from ..clickhouse.engine import Engine
from ..errors import ConfigError
from ..files import write_whole
from ..store.layout import StoreLayout
from .document import build_document, build_remote_document
from .html import report_page
from .limits import DEFAULT_LIMITS, Limits


@dataclass
class ReportInfo:
    run_id: str
    path: str
    bytes: int
    spans: int
    limits: dict[str, Any]
    state: str
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "path": self.path,
            "bytes": self.bytes,
            "spans": self.spans,
            "state": self.state,
            "limits": self.limits,
        }


@dataclass
class IndexInfo:
    path: str
    bytes: int
    runs: list[ReportInfo]
    warnings: list[str] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        return {"path": self.path, "bytes": self.bytes, "runs": [r.as_json() for r in self.runs]}


def default_name(run_id: str) -> str:
    return f"agenttrace-report-{run_id}.html"


def _layout(store: Path | StoreLayout) -> StoreLayout:
    return store if isinstance(store, StoreLayout) else StoreLayout(Path(store))


def render_report(
    store: Path | StoreLayout, run: str, limits: Limits = DEFAULT_LIMITS, engine: Engine | None = None
) -> tuple[str, dict[str, Any], list[str]]:
    """The report page of `run` (an id, a unique prefix or `last`), its document and warnings;
    `engine`: where the run is (default: the local store)."""
    layout = _layout(store)
    if engine is not None and not engine.is_duckdb:
        document, warnings = build_remote_document(engine, layout, run, limits)
    else:
        document, warnings = build_document(layout, resolve_run(layout, run), limits)
    return report_page(document), document, warnings


def _info(document: dict[str, Any], path: str, size: int, warnings: list[str]) -> ReportInfo:
    return ReportInfo(
        run_id=document["run"]["run_id"],
        path=path,
        bytes=size,
        spans=document["run"].get("span_count") or document["timeline"]["spans"],
        limits=document["limits"],
        state=document["verdict"]["state"],
        warnings=warnings,
    )


def write_report(
    store: Path | StoreLayout,
    run: str,
    out: Path | None = None,
    limits: Limits = DEFAULT_LIMITS,
    engine: Engine | None = None,
) -> ReportInfo:
    """Write the report of `run` to `out` (default `./agenttrace-report-<run_id>.html`)."""
    text, document, warnings = render_report(store, run, limits, engine)
    target = Path(out) if out is not None else Path(default_name(document["run"]["run_id"]))
    size = write_atomically(target, text)
    return _info(document, str(target), size, warnings)


def write_atomically(target: Path, text: str) -> int:
    """Write `text` to `target` whole or not at all (`files.write_whole`): a reader (or a crash)
    never sees half a page. Raises ConfigError naming the file."""
    if target.is_dir():
        raise ConfigError(f"cannot write the report to {target}: it is a directory")
    data = text.encode("utf-8")
    write_whole(target, data, f"the report to {target}")
    return len(data)


def write_index(
    store: Path | StoreLayout,
    out: Path | None = None,
    since: float | None = None,
    states: list[str] | None = None,
    limits: Limits = DEFAULT_LIMITS,
) -> IndexInfo:
    """Write the index page of the store's runs (started in the last `since` seconds, in one of
    `states`) to `out` (default `./agenttrace-runs.html`), and each listed run's report next to it."""
    from .index import write_index as write

    return write(_layout(store), out, since, states, limits)
