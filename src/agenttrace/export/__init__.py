"""`agenttrace export`: a run in other tools' formats.

- `perfetto`: Perfetto's protobuf trace (`perfetto.py`), for ui.perfetto.dev and the trace processor;
- `chrome-trace`: the Trace Event Format JSON (`chrome_trace.py`), for chrome://tracing and Perfetto;
- `otlp-json`: the run's OTLP records as OTLP JSON Lines (`otlp_json.py`), re-importable with
  `agenttrace serve` or any OTLP/HTTP receiver;
- `parquet`, `csv`: one view's rows for the run (`tables.py`).

Both trace formats draw the same `timeline.Timeline`. `export_run` gives the bytes and counts;
`write_atomic` puts them in place (a temporary file in the target folder, then a rename).
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ..errors import ConfigError, CorruptPartError, StoreError
from ..files import write_whole
from ..store.layout import StoreLayout


@dataclass(frozen=True)
class Format:
    name: str
    suffix: str
    """The default file's name after the run id (`<run_id><suffix>`)."""
    text: bool
    """Whether it can go to standard output (`-o -`)."""
    takes_view: bool = False


FORMATS = {
    f.name: f
    for f in (
        Format("perfetto", ".pftrace", text=False),
        Format("chrome-trace", ".trace.json", text=True),
        Format("otlp-json", ".otlp.jsonl", text=True),
        Format("parquet", ".parquet", text=False, takes_view=True),
        Format("csv", ".csv", text=True, takes_view=True),
    )
}


@dataclass
class Exported:
    data: bytes
    counts: dict[str, Any]
    warnings: list[str] = field(default_factory=list)


def get_format(name: str, view: str | None) -> Format:
    found = FORMATS.get(name)
    if found is None:
        raise ConfigError(f"unknown format {name!r}: choose one of {', '.join(FORMATS)}")
    if found.takes_view and not view:
        raise ConfigError(f"--format {name} needs --view VIEW (spans, steps, processes, gpu_samples, ...)")
    if view and not found.takes_view:
        raise ConfigError(f"--view is for --format parquet or csv, not {name}")
    return found


def default_name(run_id: str, fmt: Format, view: str | None) -> str:
    return f"{run_id}.{view}{fmt.suffix}" if fmt.takes_view else f"{run_id}{fmt.suffix}"


def export_run(layout: StoreLayout, run_id: str, fmt: Format, view: str | None = None) -> Exported:
    """The run in the format: its bytes and what they hold. The run's parts are hashed against its
    supervisor's manifest first, as `audit` and `report` do: a part that fails it (changed, deleted,
    unreadable, not decoding) is a CorruptPartError naming it, since an export without its records
    would look whole. A part DuckDB cannot even open is a StoreError, in one line."""
    with reading_store():
        return _export(layout, run_id, fmt, view)


@contextlib.contextmanager
def reading_store() -> Iterator[None]:
    """DuckDB's errors while reading the store's parts (a truncated part: `InvalidInputException`)
    as one StoreError line."""
    import duckdb

    try:
        yield
    except duckdb.Error as exc:
        message = str(exc).split("\n", 1)[0]
        raise StoreError(f"the store cannot be read: {message}") from None


_NOT_THE_SUPERVISORS = "was not written by the run's supervisor"
"""An extra part someone else added: its records are left out, and the export is still whole."""


def _missing_records(db: Any, run_id: str) -> list[str]:
    """Why some of the supervisor's records of the run are not in `db`: its parts that fail their
    manifest (changed, deleted, unreadable, not decoding). A run without a manifest has none: its
    corrupt parts are skipped with a warning, as every reader does."""
    return [
        reason
        for run, reason, part in getattr(db, "problems", [])
        if run == run_id and part is not None and _NOT_THE_SUPERVISORS not in reason
    ]


def _refuse_incomplete(run_id: str, missing: list[str]) -> None:
    if missing:
        raise CorruptPartError(
            f"run {run_id}: {missing[0]}; an export would leave its records out "
            f"(`agenttrace audit {run_id}` says what its integrity check finds)"
        )


def _export(layout: StoreLayout, run_id: str, fmt: Format, view: str | None) -> Exported:
    if fmt.name in ("perfetto", "chrome-trace"):
        from ..analysis.derived import run_database
        from .timeline import build

        timeline, warnings, missing = run_database(
            layout,
            run_id,
            lambda db: (build(db, run_id), list(db.warnings), _missing_records(db, run_id)),
            verify=True,
        )
        _refuse_incomplete(run_id, missing)
        if fmt.name == "perfetto":
            from .perfetto import to_perfetto

            data, counts = to_perfetto(timeline)
            return Exported(data, asdict(counts), warnings)
        from .chrome_trace import to_chrome_trace

        document, chrome = to_chrome_trace(timeline)
        text = json.dumps(document, ensure_ascii=False, separators=(",", ":"))
        return Exported(text.encode("utf-8"), asdict(chrome), warnings)
    with _open(layout, run_id) as db:
        exported = _export_records(db, run_id, fmt, view)
        _refuse_incomplete(run_id, _missing_records(db, run_id))
        return exported


def _export_records(db: Any, run_id: str, fmt: Format, view: str | None) -> Exported:
    if fmt.name == "otlp-json":
        from .otlp_json import to_otlp_json

        text, otlp = to_otlp_json(db, run_id)
        return Exported(text.encode("utf-8"), asdict(otlp), list(db.warnings))
    from . import tables

    assert view is not None
    if fmt.name == "parquet":
        table = tables.view_table(db, run_id, view)
        counts = {"view": view, "rows": table.num_rows, "columns": table.num_columns}
        return Exported(tables.to_parquet_bytes(table), counts, list(db.warnings))
    columns, rows = tables.view_rows(db, run_id, view)
    counts = {"view": view, "rows": len(rows), "columns": len(columns)}
    return Exported(tables.to_csv_text(columns, rows).encode("utf-8"), counts, list(db.warnings))


def _open(layout: StoreLayout, run_id: str) -> Any:
    """The run's views over its parts (the raw records, which a run's derived tables do not hold)."""
    from ..analysis import Database

    return Database(layout, runs=[run_id], verify=True)


def write_atomic(path: Path, data: bytes) -> None:
    """`data` into `path` whole or not at all (`files.write_whole`). Raises ConfigError naming
    the path when it cannot be written."""
    write_whole(path, data)


__all__ = [
    "FORMATS",
    "Exported",
    "Format",
    "default_name",
    "export_run",
    "get_format",
    "reading_store",
    "write_atomic",
]
