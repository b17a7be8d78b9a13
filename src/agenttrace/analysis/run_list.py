"""`agenttrace runs`: every run's row of the `runs` view, read from the runs' summaries (their
derived `runs` table, `store.derived`) in one DuckDB `read_parquet`, and computed from their own
records only for the runs without a usable summary (open runs, runs sealed before derived tables
existed, runs whose records changed). Needs no pyarrow while every run has a summary."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from .. import queries
from ..store.derived import summary_path, usable
from ..store.layout import StoreLayout


def list_runs(layout: StoreLayout, state: str | None = None) -> tuple[list[dict[str, Any]], list[str]]:
    """The rows of `queries/reports/run_list.sql`, oldest first, and warnings."""
    layout.require_readable()
    summaries, rest = [], []
    for run_id in layout.run_ids():
        found = usable(layout, run_id, tables=("runs",))  # a supervised run's: hashed against its manifest
        if found is None:
            rest.append(run_id)
        else:
            summaries.append(str(summary_path(layout, run_id)))
    rows: list[dict[str, Any]] = []
    warnings: list[str] = []
    if summaries:
        rows += _from_summaries(layout, summaries, state)
    if rest:
        from .database import Database

        with Database(layout, runs=rest) as db:
            rows += db.report("run_list", state=state)
            warnings += db.warnings
    rows.sort(key=lambda r: (r["started"] is None, r["started"] or datetime.min, r["run_id"]))
    return rows, warnings


def _from_summaries(layout: StoreLayout, paths: list[str], state: str | None) -> list[dict[str, Any]]:
    import duckdb

    from .sandbox import lock_down, sql_literal

    con = duckdb.connect(":memory:")
    try:
        con.execute("SET TimeZone = 'UTC'")
        files = "[" + ", ".join(sql_literal(p) for p in paths) + "]"
        # one schema: every summary used was computed by the installed view SQL (`usable`)
        con.execute(f"CREATE VIEW runs AS SELECT * FROM read_parquet({files})")
        lock_down(con, str(layout.root))
        result = con.execute(queries.load("reports/run_list.sql"), {"state": state})
        columns = [d[0] for d in result.description or ()]
        return [dict(zip(columns, row, strict=True)) for row in result.fetchall()]
    finally:
        con.close()


__all__ = ["list_runs"]
