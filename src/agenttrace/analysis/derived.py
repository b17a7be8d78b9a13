"""Reading one run from its derived tables (`store.derived`) instead of computing its views.

`DerivedDatabase` answers the same SQL as `Database` does for one run (the views keep their names
and columns; they read the run's derived Parquet files), with DuckDB alone: no pyarrow, no pandas,
no part decoded. Each table is read once, hashed, and handed to DuckDB from memory (a memfd), so a
file changed after the check (by a process the agent left behind) is not what is read; the
sandbox allows those memory files and the store, nothing else.

`run_database` picks it when the run's derived tables are usable and falls back to `Database`
otherwise, and also when SQL reads something the derived tables do not hold (a `--gates` gate
over `raw_spans`, say): a cache miss, never a different answer.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

import duckdb

from .. import queries
from ..errors import AgentTraceError, QueryError
from ..store.derived import Usable, usable, why_not
from ..store.layout import StoreLayout
from .sandbox import SQL_ERRORS, first_line, lock_down, sql_literal

log = logging.getLogger(__name__)
T = TypeVar("T")

_EMPTY_TABLES = (
    "CREATE TABLE live_runs (run_id VARCHAR)",
    "CREATE TABLE supervised_runs (run_id VARCHAR)",
    "CREATE TABLE integrity_problems (run_id VARCHAR, reason VARCHAR, part VARCHAR)",
    "CREATE TABLE url_checks (url VARCHAR, status INTEGER, error VARCHAR)",
)
"""What the views read besides the parts: the run is sealed (not live), its parts match its
manifest (no integrity problem), and no URL was checked live."""


_DEFINITION = re.compile(r"^\s*CREATE\s+OR\s+REPLACE\s+(VIEW|MACRO)\s+([A-Za-z_][A-Za-z0-9_]*)", re.I | re.M)


@cache
def _definitions() -> tuple[tuple[str | None, str], ...]:
    """The CREATE statements of the view files (raw ones aside), in order: (view name, SQL), or
    (None, SQL) for a macro. A run's derived tables hold the views that read its records; the
    others (lookup tables of known agents' conventions) and the macros are defined from here. A
    statement runs from its `CREATE OR REPLACE` to the next one (the files are agenttrace's own,
    and the derived tables are used only with the view SQL they were computed by)."""
    found: list[tuple[str | None, str]] = []
    for path in sorted((queries.queries_dir() / "views").glob("*.sql")):
        if path.name == "raw.sql":
            continue
        text = path.read_text(encoding="utf-8")
        starts = list(_DEFINITION.finditer(text))
        for match, following in zip(starts, [*starts[1:], None], strict=True):
            sql = text[match.start() : following.start() if following is not None else len(text)]
            found.append((match.group(2) if match.group(1).upper() == "VIEW" else None, sql))
    return tuple(found)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class CacheMiss(AgentTraceError):
    """The derived tables cannot answer this: compute the views instead. Never shown to a user."""


class DerivedDatabase:
    """One sealed run, seen through its derived tables. Same methods as `Database` for the read
    commands (`execute`, `records`, `report`, `materialize`, `set_url_checks`, ...)."""

    def __init__(self, layout: StoreLayout, run_id: str, found: Usable) -> None:
        self.layout = layout
        self.run_id = run_id
        self.warnings: list[str] = []
        self._supervised = found.supervised
        self._fds: list[int] = []
        self._files: list[str] = []
        self.con = duckdb.connect(":memory:")
        try:
            self.con.execute("SET TimeZone = 'UTC'")
            for statement in _EMPTY_TABLES:
                self.con.execute(statement)
            if found.supervised:
                self.con.execute("INSERT INTO supervised_runs VALUES ($run_id)", {"run_id": run_id})
            for name, data in found.data.items():  # the bytes that were hashed, not the file again
                fd = os.memfd_create(f"agenttrace-{name}.parquet", os.MFD_CLOEXEC)
                self._fds.append(fd)
                _write_all(fd, data)
                path = f"/proc/self/fd/{fd}"
                self._files.append(path)
                self.con.execute(f"CREATE VIEW {name} AS SELECT * FROM read_parquet({sql_literal(path)})")
            for name, sql in _definitions():  # the lookup views that read no run's records
                if name is None or name not in found.tables:
                    self.con.execute(sql)
            lock_down(self.con, str(layout.root), self._files)
        except BaseException:
            self.close()
            raise

    @classmethod
    def open(cls, layout: StoreLayout, run_id: str, *, verify: bool = False) -> DerivedDatabase | None:
        """The run over its derived tables, or None when they are not usable (see
        `store.derived`). `verify`: every part of a supervised run is hashed against its manifest
        first (an audit), without being decoded."""
        found = usable(layout, run_id, verify_parts=verify, keep_bytes=True)
        if found is None:
            if log.isEnabledFor(logging.DEBUG):
                log.debug("run %s: views computed (%s)", run_id, why_not(layout, run_id, verify_parts=verify))
            return None
        try:
            db = cls(layout, run_id, found)
        except duckdb.Error as exc:  # a table that does not read as Parquet, say
            log.debug("run %s: views computed (derived tables unreadable: %s)", run_id, first_line(exc))
            return None
        log.debug("run %s: read from its derived tables", run_id)
        return db

    def is_supervised(self, run_id: str) -> bool:
        return run_id == self.run_id and self._supervised

    def materialize(self) -> None:
        """Nothing to compute: the tables are."""

    def set_url_checks(self, checks: list[tuple[str, int | None, str | None]]) -> None:
        """Live answers for `claim_evidence` (`audit --online`): that view alone is computed
        again, by its own SQL, over the run's derived tables."""
        if checks:
            self.con.executemany("INSERT INTO url_checks VALUES (?, ?, ?)", [list(c) for c in checks])
        self._run(queries.load("views/claim_evidence.sql"), None)

    def _run(self, sql: str, params: dict[str, Any] | None) -> duckdb.DuckDBPyConnection:
        try:
            return self.con.execute(sql, params or {})
        except duckdb.CatalogException as exc:  # a relation or function only the views have
            raise CacheMiss(first_line(exc)) from exc
        except SQL_ERRORS as exc:
            raise QueryError(first_line(exc)) from exc
        except duckdb.Error as exc:  # a derived file unreadable after all: compute the views
            raise CacheMiss(first_line(exc)) from exc

    def execute(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement; return column names and rows. Raises QueryError or CacheMiss."""
        result = self._run(sql, params)
        columns = [d[0] for d in result.description or ()]
        try:
            return columns, result.fetchall()
        except duckdb.Error as exc:
            raise CacheMiss(first_line(exc)) from exc

    def records(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        columns, rows = self.execute(sql, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def report(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return self.records(queries.load(f"reports/{name}.sql"), params)

    def close(self) -> None:
        self.con.close()
        for fd in self._fds:
            with contextlib.suppress(OSError):
                os.close(fd)
        self._fds.clear()

    def __enter__(self) -> DerivedDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def run_database(
    store: Path | StoreLayout, run_id: str, work: Callable[[Any], T], *, verify: bool = False
) -> T:
    """`work(db)` over one run: its derived tables when usable, else (or on a cache miss) the
    views computed from its parts (`Database(store, runs=[run_id], verify=verify)`)."""
    layout = store if isinstance(store, StoreLayout) else StoreLayout(Path(store))
    fast = DerivedDatabase.open(layout, run_id, verify=verify)
    if fast is not None:
        try:
            with fast:
                return work(fast)
        except CacheMiss as exc:
            log.debug("run %s: derived tables cannot answer (%s): views computed", run_id, exc)
    from .database import Database

    with Database(layout, runs=[run_id], verify=verify) as db:
        return work(db)


__all__ = ["CacheMiss", "DerivedDatabase", "run_database"]
