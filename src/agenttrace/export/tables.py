"""Any view's rows for one run, as Parquet or CSV.

A view is one of those with a `run_id` column (`views_with_run_id`: `spans`, `steps`,
`processes`, `artifacts`, `claims`, `gpu_samples`, `logs`, `metrics`, ...). Parquet keeps DuckDB's
types (timestamps, maps and lists as such); CSV writes them as `agenttrace query --csv` does (maps
and lists as JSON).
"""

from __future__ import annotations

from typing import Any

from .. import queries
from ..errors import ConfigError

_BOOKKEEPING = {"live_runs", "supervised_runs"}
"""Tables agenttrace registers for the views to read (which runs are live, which supervised)."""


def view_names(db: Any) -> list[str]:
    """The views a run's rows can be exported from, sorted."""
    names = {row["table_name"] for row in db.report("views_with_run_id")}
    return sorted(n for n in names - _BOOKKEEPING if not n.startswith(("_", "raw")))


def check_view(db: Any, view: str) -> None:
    names = view_names(db)
    if view not in names:
        raise ConfigError(f"unknown view {view!r}: choose one of {', '.join(names)}")


def arrow(db: Any, sql: str, params: dict[str, Any]) -> Any:
    """`db.arrow(sql, params)` without DuckDB's warning that the Arrow table of a prepared
    statement's result is a copy (it is small: one run's rows)."""
    import warnings

    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Arrow output on a DB-API result", category=UserWarning)
        return db.arrow(sql, params)


def view_table(db: Any, run_id: str, view: str) -> Any:
    """The view's rows for the run, as an Arrow table (`db`: a `Database`)."""
    check_view(db, view)
    return arrow(db, queries.load("reports/export_view.sql"), {"view": view, "run_id": run_id})


def view_rows(db: Any, run_id: str, view: str) -> tuple[list[str], list[tuple[Any, ...]]]:
    """The view's rows for the run, as DuckDB gives them to Python (maps as dicts)."""
    check_view(db, view)
    return db.execute(queries.load("reports/export_view.sql"), {"view": view, "run_id": run_id})


def to_parquet_bytes(table: Any) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = pa.BufferOutputStream()
    pq.write_table(table, sink, compression="zstd")
    return sink.getvalue().to_pybytes()


def to_csv_text(columns: list[str], rows: list[tuple[Any, ...]]) -> str:
    from ..render.values import to_csv

    return to_csv(columns, rows)


__all__ = ["arrow", "check_view", "to_csv_text", "to_parquet_bytes", "view_names", "view_rows", "view_table"]
