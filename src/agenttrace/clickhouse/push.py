"""`agenttrace push RUN --to clickhouse://...`: a run recorded locally, into ClickHouse.

What goes: the run's records as the local analyzer reads them (the parts its supervisor's manifest
lists, each record with who reported it: `Origin`), into `agenttrace_spans`, `agenttrace_logs` and
`agenttrace_samples`, then the manifest's verdict on them (`agenttrace_problems`), and last one
`agenttrace_runs` row. The engine reads a run's newest push only, and only once that last row is
written, so a push cut short is never read, and pushing again replaces, not doubles.

What stays: files (deliverables, evidence, recorded bodies) stay in the local artifact store. Their
path, size and sha256 travel in the span events (`artifacts` view), which is all a verdict reads;
`agenttrace replay` needs the local store.
"""

from __future__ import annotations

import datetime as dt
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .. import __version__
from ..analysis.database import Database
from ..errors import QueryError, StoreError
from ..store.layout import StoreLayout
from .database import first_line

_RUN_COLUMNS = (
    "RunId",
    "Supervised",
    "PushedAt",
    "Host",
    "Store",
    "Spans",
    "Logs",
    "Samples",
    "AgenttraceVersion",
)
_BATCH = 200
"""Runs read per store open (`push --all` over a big store)."""
_KINDS = (
    ("raw_spans", "agenttrace_spans"),
    ("raw_logs", "agenttrace_logs"),
    ("raw_samples", "agenttrace_samples"),
)


@dataclass(frozen=True)
class Pushed:
    run_id: str
    supervised: bool
    spans: int
    logs: int
    samples: int
    problems: int

    def as_json(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "supervised": self.supervised,
            "spans": self.spans,
            "logs": self.logs,
            "samples": self.samples,
            "integrity_problems": self.problems,
        }


def push_runs(
    layout: StoreLayout,
    run_ids: Sequence[str],
    client: Any,
    *,
    progress: Callable[[Pushed], None] | None = None,
) -> list[Pushed]:
    """Push each run (already resolved); raises StoreError for a run still being recorded, and
    QueryError when ClickHouse refuses a write (what was written of that run is never read)."""
    done = []
    for start in range(0, len(run_ids), _BATCH):
        batch = list(run_ids[start : start + _BATCH])
        with Database(layout, runs=batch, verify=True) as db:  # one open for many runs
            live = set(db.snapshot.live_runs) & set(batch)
            if live:
                raise StoreError(f"run {sorted(live)[0]} is still being recorded: push it once it has ended")
            everything = {name: db.arrow(f"SELECT * FROM {name}") for name, _ in _KINDS}
            for run_id in batch:
                tables = {
                    name: t.filter(pc.equal(t.column("RunId"), run_id)) for name, t in everything.items()
                }
                problems = [p for p in db.problems if p[0] == run_id]
                pushed = _push_one(run_id, tables, db.is_supervised(run_id), problems, layout, client)
                done.append(pushed)
                if progress is not None:
                    progress(pushed)
    return done


def _push_one(
    run_id: str,
    tables: dict[str, pa.Table],
    supervised: bool,
    problems: list[tuple[str, str, str | None]],
    layout: StoreLayout,
    client: Any,
) -> Pushed:
    if not any(t.num_rows for t in tables.values()) and not supervised:
        raise StoreError(f"run {run_id} has no records to push")
    pushed_at = dt.datetime.now(dt.UTC)
    try:
        for source, target in _KINDS:
            table = tables[source]
            if table.num_rows:
                client.insert_arrow(target, _for_clickhouse(table, pushed_at))
        if problems:
            client.insert(
                "agenttrace_problems",
                [[run_id, pushed_at, reason, part] for _, reason, part in problems],
                column_names=["RunId", "PushedAt", "Reason", "Part"],
            )
        row = [
            run_id, supervised, pushed_at, socket.gethostname(), str(layout.root),
            tables["raw_spans"].num_rows, tables["raw_logs"].num_rows, tables["raw_samples"].num_rows,
            __version__,
        ]  # fmt: skip
        client.insert("agenttrace_runs", [row], column_names=list(_RUN_COLUMNS))
    except Exception as exc:  # clickhouse_connect's errors and the transport's
        hint = " (run `agenttrace clickhouse init --to ...` first)" if "UNKNOWN_TABLE" in str(exc) else ""
        raise QueryError(f"ClickHouse refused run {run_id}: {first_line(exc)}{hint}") from exc
    return Pushed(
        run_id,
        supervised,
        tables["raw_spans"].num_rows,
        tables["raw_logs"].num_rows,
        tables["raw_samples"].num_rows,
        len(problems),
    )


def _for_clickhouse(table: pa.Table, pushed_at: dt.datetime) -> pa.Table:
    """`_Origin` -> `Origin`, plus `PushedAt`."""
    names = ["Origin" if n == "_Origin" else n for n in table.column_names]
    table = table.rename_columns(names)
    stamp = pa.array([pushed_at] * table.num_rows, pa.timestamp("us", tz="UTC"))
    return table.append_column("PushedAt", stamp)
