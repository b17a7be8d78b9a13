"""The read commands' one way to the analyzer, on either engine (`--engine`, `AGENTTRACE_ENGINE`).

DuckDB over the local store is the default, with its fast paths (a run's derived tables, summaries).
On ClickHouse the same views, gates and reports run there (`agenttrace.clickhouse`): the run ids come
from the database, and the store is not read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from typing import Any, TypeVar

from ..clickhouse.engine import Engine, parse_engine
from ..store.layout import StoreLayout

T = TypeVar("T")

__all__ = ["Engine", "list_runs_on", "on_run", "open_runs", "parse_engine", "run_ids_since"]


def _recent(row: dict[str, Any], since: dt.datetime) -> bool:
    """A run listed since `since`: its last time (ended, else started) is at or after it; a run
    with no time at all is kept (it cannot be shown to be older)."""
    last = row["ended"] or row["started"]
    return last is None or last >= since


@contextlib.contextmanager
def _client(engine: Engine) -> Iterator[Any]:
    from ..clickhouse.engine import connect

    client = connect(engine)
    try:
        yield client
    finally:
        with contextlib.suppress(Exception):
            client.close()


def on_run(
    engine: Engine, layout: StoreLayout, ref: str, work: Callable[[Any, str], T], *, verify: bool = False
) -> tuple[str, T]:
    """(run id, `work(db, run_id)`) for the run `ref` names (an id, a unique prefix, or `last`)."""
    if engine.is_duckdb:
        from .derived import run_database
        from .resolve import resolve_run

        run_id = resolve_run(layout, ref)
        return run_id, run_database(layout, run_id, lambda db: work(db, run_id), verify=verify)
    from ..clickhouse.database import ClickHouseDatabase
    from ..clickhouse.runs import resolve_run as resolve_remote

    with _client(engine) as client:
        run_id = resolve_remote(client, ref, str(engine))
        with ClickHouseDatabase(client, [run_id]) as db:
            return run_id, work(db, run_id)


def run_ids_since(engine: Engine, layout: StoreLayout, since: dt.datetime | None) -> list[str]:
    """Every run with a record at or after `since` (all runs without it), oldest first."""
    if engine.is_duckdb:
        from .run_list import list_runs

        rows, _ = list_runs(layout)
        return [r["run_id"] for r in rows if since is None or _recent(r, since)]
    from ..clickhouse.runs import run_ids

    with _client(engine) as client:
        return [run_id for run_id, _ in run_ids(client, since)]


@contextlib.contextmanager
def open_runs(
    engine: Engine, layout: StoreLayout, run_ids: Sequence[str], *, verify: bool = False
) -> Iterator[Any]:
    """One database over these runs (an all-runs audit): DuckDB over their parts, or ClickHouse."""
    if engine.is_duckdb:
        from .database import Database

        with Database(layout, runs=list(run_ids), verify=verify) as db:
            yield db
        return
    from ..clickhouse.database import ClickHouseDatabase

    with _client(engine) as client, ClickHouseDatabase(client, list(run_ids)) as db:
        yield db


def list_runs_on(
    engine: Engine, layout: StoreLayout, state: str | None, since: dt.datetime | None = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """`agenttrace runs`: the rows of `reports/run_list.sql`, oldest first, and warnings."""
    if engine.is_duckdb:
        from .run_list import list_runs

        rows, warnings = list_runs(layout, state)
    else:
        from .. import queries
        from ..clickhouse.database import ClickHouseDatabase
        from ..clickhouse.runs import run_ids

        with _client(engine) as client:
            ids = [r for r, _ in run_ids(client, since)]
            if not ids:
                return [], []
            with ClickHouseDatabase(client, ids) as db:
                rows = db.records(queries.load("reports/run_list.sql"), {"state": state})
                warnings = db.warnings
    if since is not None:
        rows = [r for r in rows if _recent(r, since)]
    return rows, warnings


def query_on(
    engine: Engine, layout: StoreLayout, sql: str
) -> tuple[list[str], list[tuple[Any, ...]], list[str]]:
    """`agenttrace query`: one read-only SELECT over every run's views."""
    if engine.is_duckdb:
        from .database import Database

        with Database(layout) as db:
            columns, rows = db.execute(sql)
            return columns, rows, db.warnings
    from ..clickhouse.database import ClickHouseDatabase

    with _client(engine) as client, ClickHouseDatabase(client, None) as db:
        columns, rows = db.execute(sql)
        return columns, rows, db.warnings
