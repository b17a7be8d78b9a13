"""A DuckDB connection over a store, with the views of queries/views/*.sql defined on it."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from .. import queries
from ..errors import QueryError
from ..store.layout import StoreLayout
from ..store.parts import part_decode_problem
from ..store.reader import Snapshot, snapshot
from ..store.schema import SAMPLE_SCHEMA, SPAN_SCHEMA

log = logging.getLogger(__name__)

VIEWS = (
    "raw", "spans", "processes", "steps", "artifacts", "claims", "gpu_samples", "runs",
    "verifications", "claim_evidence",
)  # fmt: skip
"""View files in the order they are created (later views read earlier ones)."""

USER_VIEWS = ("runs", "spans", "steps", "processes", "artifacts", "claims", "gpu_samples")
"""The views users query; their columns are part of the contract (`verifications` and
`claim_evidence` are there too, for the gates and for people)."""

URL_CHECKS_SCHEMA = pa.schema([("url", pa.string()), ("status", pa.int32()), ("error", pa.string())])
"""`url_checks`: live answers for URLs cited as evidence (`agenttrace audit --online`)."""

_MAX_CORRUPT_RETRIES = 16
_SQL_ERRORS = (
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.InvalidTypeException,
    duckdb.PermissionException,
)
"""Errors in the SQL itself, as opposed to errors reading a part."""


class Database:
    """The store, seen through DuckDB. `runs` limits it to some runs (faster for one run)."""

    def __init__(self, store: Path | StoreLayout, runs: Sequence[str] | None = None) -> None:
        self.layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
        self.snapshot: Snapshot = snapshot(self.layout, list(runs) if runs is not None else None)
        self.warnings: list[str] = list(self.snapshot.warnings)
        self._materialized = False
        self._url_checks_set = False
        self.con = duckdb.connect(":memory:")
        self.con.execute("SET TimeZone = 'UTC'")
        self._register_sources()
        for name in VIEWS:
            self.con.execute(queries.load(f"views/{name}.sql"))

    def materialize(self) -> None:
        """Compute the views once into temporary tables, for a series of queries over the same
        runs (an audit runs a dozen gate queries; each would otherwise recompute `spans`,
        `steps`, ... from the parts). The views keep their names and columns. Once per open."""
        if self._materialized:
            return
        self._materialized = True
        for name in VIEWS:
            if name == "raw":
                continue
            self.execute(f"CREATE OR REPLACE TEMP TABLE _materialized_{name} AS SELECT * FROM {name}")
            self.execute(f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM _materialized_{name}")

    def set_url_checks(self, checks: list[tuple[str, int | None, str | None]]) -> None:
        """Live answers (url, HTTP status, error) for the `claim_evidence` view; before
        `materialize()`."""
        urls, statuses, errors = (list(c) for c in zip(*checks, strict=True)) if checks else ([], [], [])
        table = pa.table({"url": urls, "status": statuses, "error": errors}, schema=URL_CHECKS_SCHEMA)
        self.con.register("url_checks", table)
        self._url_checks_set = True

    def _register_sources(self) -> None:
        snap = self.snapshot
        self.con.register("_spool_spans", snap.spool_spans)
        self.con.register("live_runs", pa.table({"run_id": pa.array(snap.live_runs, pa.string())}))
        if not self._url_checks_set:
            self.con.register("url_checks", URL_CHECKS_SCHEMA.empty_table())
        for name, parts, schema in (
            ("_part_spans", snap.span_parts, SPAN_SCHEMA),
            ("_part_samples", snap.sample_parts, SAMPLE_SCHEMA),
        ):
            if parts:
                relation = self.con.read_parquet([str(p) for p in parts], union_by_name=True)
            else:
                relation = self.con.from_arrow(schema.empty_table())
            relation.create_view(name, replace=True)

    def _skip_corrupt_parts(self, error: duckdb.Error) -> bool:
        """After a read error, skip the parts to blame: the one the error names, else every part
        that does not decode in full. True if any part was skipped (the query can be retried)."""
        if isinstance(error, _SQL_ERRORS):
            return False
        message = str(error)
        reason = re.sub(r"\s+", " ", message.split("\n", 1)[0])
        skipped = False
        for parts in (self.snapshot.span_parts, self.snapshot.sample_parts):
            named = [p for p in parts if str(p) in message]
            for part in named or [p for p in parts if part_decode_problem(p)]:
                parts.remove(part)
                self.warnings.append(f"skipped corrupt part {part}: {part_decode_problem(part) or reason}")
                skipped = True
        if skipped:
            self._register_sources()
        return skipped

    def execute(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement; return column names and rows. Raises QueryError."""
        for _ in range(_MAX_CORRUPT_RETRIES):
            try:
                result = self.con.execute(sql, params or {})
                columns = [d[0] for d in result.description or ()]
                return columns, result.fetchall()
            except duckdb.Error as exc:
                if self._skip_corrupt_parts(exc):
                    continue
                raise QueryError(_first_line(exc)) from exc
        raise QueryError("too many corrupt parts; run `agenttrace query` with --debug for details")

    def records(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        columns, rows = self.execute(sql, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def report(self, name: str, **params: Any) -> list[dict[str, Any]]:
        """Run `queries/reports/<name>.sql` with bound parameters."""
        return self.records(queries.load(f"reports/{name}.sql"), params)

    def arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        for _ in range(_MAX_CORRUPT_RETRIES):
            try:
                return self.con.execute(sql, params or {}).arrow()
            except duckdb.Error as exc:
                if self._skip_corrupt_parts(exc):
                    continue
                raise QueryError(_first_line(exc)) from exc
        raise QueryError("too many corrupt parts")

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> Database:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
