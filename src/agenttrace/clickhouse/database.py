"""The analyzer over ClickHouse: the same views, names and columns as `analysis.Database`, computed
by ClickHouse from the tables a collector's `clickhouse` exporter and `agenttrace push` write.

ClickHouse has no temporary views, and a fleet's database is shared: nothing is created in it. Each
view becomes a temporary table of this connection's session (`CREATE TEMPORARY TABLE spans AS ...`),
computed the first time a query reads it, for the runs asked for only. A temporary table hides a
table of the same name in the database, so a user's SQL reads the views as it does on DuckDB.

Every query is one of agenttrace's `.sql` files (its ClickHouse variant, or transpiled: see
`translate`) or a user's SELECT (transpiled, with no table function: `sandbox`).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from functools import cache
from typing import Any

import pyarrow as pa

from .. import queries
from ..analysis.database import VIEWS
from ..analysis.readonly import ensure_read_only
from ..errors import QueryError, StoreError
from .sandbox import ensure_inside
from .translate import (
    VARIANTS,
    bind_types,
    shipped_path,
    to_clickhouse,
    transpile,
    variant_path,
    without_trailing,
)

log = logging.getLogger(__name__)

BASE = (
    "_pushes",
    "raw_spans",
    "raw_logs",
    "raw_samples",
    "supervised_runs",
    "integrity_problems",
    "live_runs",
)
"""What `queries/clickhouse/views/raw.sql` defines, in order."""

SETTINGS = {
    "join_use_nulls": 1,  # an unmatched side of an outer join is NULL, as in DuckDB (not '' / 0)
    "prefer_column_name_to_alias": 1,  # `sum(x) AS x ... WHERE x IS NULL` means the column, as in DuckDB
    "session_timezone": "UTC",
    "aggregate_functions_null_for_empty": 1,
    # a gate asked for many runs at once is many copies of it (`execute_per_run`)
    "max_ast_elements": 5_000_000,
    "max_expanded_ast_elements": 5_000_000,  # max() of no rows is NULL, as in DuckDB (not 0)
    "allow_experimental_analyzer": 1,  # correlated subqueries
    "allow_experimental_correlated_subqueries": 1,
}

_STATEMENT = re.compile(
    r"^\s*CREATE\s+OR\s+REPLACE\s+(VIEW|MACRO)\s+([A-Za-z_][A-Za-z0-9_]*)\s+AS\b", re.I | re.M
)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NOT_NAMES = re.compile(r"/\*.*?\*/|--[^\n]*|'(?:[^'\\]|\\.|'')*'|\{\w+:[^}]*\}", re.S)
"""Comments, string literals and `{name:Type}` parameters: no view is named in them."""


def _names(sql: str) -> list[str]:
    """The words of `sql` that could name a relation, in order, once each."""
    return list(dict.fromkeys(_WORD.findall(_NOT_NAMES.sub(" ", sql))))


def _statements(text: str) -> list[tuple[str, str, str]]:
    """(kind, name, body) of each `CREATE OR REPLACE VIEW|MACRO name AS body;` in a view file."""
    starts = list(_STATEMENT.finditer(text))
    found = []
    for match, following in zip(starts, [*starts[1:], None], strict=True):
        body = text[match.end() : following.start() if following is not None else len(text)]
        lines = body.strip().splitlines()
        while lines and (not lines[-1].strip() or lines[-1].lstrip().startswith("--")):
            lines.pop()  # the next statement's leading comment
        body = "\n".join(lines).strip().rstrip(";").strip()
        found.append((match.group(1).upper(), match.group(2), body))
    return found


@cache
def definitions() -> tuple[tuple[str, str | QueryError], ...]:
    """Every view the engine can compute, in dependency order: (name, ClickHouse SELECT), or why a
    view cannot be computed on ClickHouse (raised when a query reads it)."""
    found: list[tuple[str, str | QueryError]] = []
    for name in VIEWS:
        rel = f"views/{name}.sql"
        variant = variant_path(rel)
        if variant is not None:
            for kind, view, body in _statements(queries.load(variant)):
                if kind != "VIEW":
                    raise StoreError(f"{variant}: ClickHouse has no macros ({view})")
                found.append((view, body))
            continue
        statements = _statements(queries.load(rel))
        macros = [view for kind, view, _ in statements if kind != "VIEW"]
        for kind, view, body in statements:
            if kind != "VIEW":
                continue
            if macros:
                found.append(
                    (
                        view,
                        QueryError(
                            f"{rel} uses DuckDB macros ({', '.join(macros)}): no ClickHouse variant yet"
                        ),
                    )
                )
                continue
            try:
                found.append((view, transpile(body)))
            except QueryError as exc:
                found.append((view, QueryError(f"{rel}: {exc}")))
    return tuple(found)


_INDEXED_FROM = 50
"""Views over more runs than this are MergeTree tables ordered by run (else Memory tables)."""
_MAX_QUERY = 200_000
"""Bytes of SQL per batched query (ClickHouse refuses queries past 256 KiB by default)."""

_OWN = frozenset(
    {"SELECT run_id FROM supervised_runs", "SELECT run_id, reason, part FROM integrity_problems"}
)
"""agenttrace's own SQL that is not in a file."""


class ClickHouseDatabase:
    """Some runs (or all of them) of a ClickHouse database, seen through agenttrace's views. Same
    methods as `analysis.Database` for the read commands."""

    def __init__(self, client: Any, runs: Sequence[str] | None = None) -> None:
        if getattr(client, "_agenttrace_database", None) is not None:
            raise StoreError("this ClickHouse session already holds agenttrace's views: open another client")
        client._agenttrace_database = self
        self.client = client
        self.warnings: list[str] = []
        self.runs = list(runs) if runs is not None else None
        self._base_params: dict[str, Any] = {"all_runs": runs is None, "runs": list(runs or [])}
        self._defined: set[str] = set()
        self._views = dict(definitions())
        self._supervised: set[str] | None = None
        self._problems: list[tuple[str, str, str | None]] | None = None
        self._command(
            "CREATE TEMPORARY TABLE IF NOT EXISTS url_checks "
            "(url Nullable(String), status Nullable(Int32), error Nullable(String)) ENGINE = Memory"
        )

    # -- the views, computed on first use -------------------------------------------------------

    def _ensure(self, sql: str) -> None:
        """Compute every view `sql` names (and what they read) that is not computed yet."""
        for word in _names(sql):
            if word in self._views and word not in self._defined:
                self._define(word, ())

    def _define(self, name: str, chain: tuple[str, ...]) -> None:
        if name in chain:
            raise StoreError(f"the ClickHouse views read each other in a circle: {' -> '.join(chain)}")
        body = self._views[name]
        if isinstance(body, QueryError):
            raise body
        for word in _names(body):
            if word != name and word in self._views and word not in self._defined:
                self._define(word, (*chain, name))
        params = {k: v for k, v in self._base_params.items() if "{" + k + ":" in body}
        engine = "Memory"
        if self.runs is None or len(self.runs) > _INDEXED_FROM:
            # many runs: a run's rows together, found by the primary index (a gate asks for one run
            # at a time); a few runs are read whole, and need no index
            try:
                described = self.client.query(
                    f"DESCRIBE TABLE ({body})", parameters=params or None, settings=SETTINGS
                )
            except Exception as exc:
                raise QueryError(f"ClickHouse: view {name}: {first_line(exc)}") from exc
            if "run_id" in {row[0] for row in described.result_rows}:
                engine = "MergeTree ORDER BY run_id SETTINGS allow_nullable_key = 1, index_granularity = 1024"
        self._command(f"CREATE TEMPORARY TABLE {name} ENGINE = {engine} AS {body}", params)
        self._defined.add(name)

    def materialize(self) -> None:
        """The views are computed once each already (temporary tables)."""

    # -- queries ----------------------------------------------------------------------------------

    def _command(self, sql: str, params: dict[str, Any] | None = None) -> None:
        try:
            self.client.command(sql, parameters=params or None, settings=SETTINGS)
        except Exception as exc:  # clickhouse_connect's errors, and the transport's
            raise QueryError(f"ClickHouse: {first_line(exc)}") from exc

    def _prepare(self, sql: str, params: dict[str, Any] | None) -> tuple[str, dict[str, Any]]:
        clickhouse = bind_types(to_clickhouse(sql), params or {})
        if shipped_path(sql) is None and sql not in _OWN:  # a user's SQL (query, --gates)
            ensure_read_only(sql)
            ensure_inside(sql)
        self._ensure(clickhouse)
        used = {k: v for k, v in (params or {}).items() if "{" + k + ":" in clickhouse}
        return clickhouse, used

    def execute(
        self, sql: str, params: dict[str, Any] | None = None
    ) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run one statement (DuckDB SQL, translated); return column names and rows."""
        clickhouse, used = self._prepare(sql, params)
        try:
            result = self.client.query(clickhouse, parameters=used or None, settings=SETTINGS)
        except Exception as exc:
            raise QueryError(f"ClickHouse: {first_line(exc)}") from exc
        columns = list(result.column_names)
        if not columns:  # no rows: ClickHouse sent no block, hence no names; ask for them
            try:
                described = self.client.query(
                    f"DESCRIBE TABLE ({clickhouse})", parameters=used or None, settings=SETTINGS
                )
            except Exception as exc:
                raise QueryError(f"ClickHouse: {first_line(exc)}") from exc
            return [row[0] for row in described.result_rows], []
        return columns, [tuple(row) for row in result.result_rows]  # named tuples come as dicts

    def execute_all_runs(
        self, gate_sql: str, run_ids: list[str], *, applies: bool = False
    ) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]] | None:
        """A built-in gate (`gate_sql` the text of its shipped file) for all `run_ids` in ONE query:
        its all-runs form `queries/clickhouse/gates_all/<gate>.sql` (or `<gate>.applies.sql`), whose
        first column is the run. None when the gate has none (or is not the shipped one)."""
        shipped = shipped_path(gate_sql)
        if shipped is None or not shipped.startswith("gates/"):
            return None
        name = shipped.removeprefix("gates/").removesuffix(".sql")
        relative = f"{VARIANTS}/gates_all/{name}{'.applies' if applies else ''}.sql"
        if not (queries.queries_dir() / relative).is_file():
            return None
        text = without_trailing(queries.load(relative))
        self._ensure(text)
        params = {"runs": list(run_ids)}
        try:
            result = self.client.query(text, parameters=params, settings=SETTINGS)
            columns = list(result.column_names)
            if not columns:
                described = self.client.query(
                    f"DESCRIBE TABLE ({text})", parameters=params, settings=SETTINGS
                )
                columns = [row[0] for row in described.result_rows]
        except Exception as exc:
            raise QueryError(f"ClickHouse: {first_line(exc)}") from exc
        grouped: dict[str, list[tuple[Any, ...]]] = {}
        for row in result.result_rows:
            grouped.setdefault(row[0], []).append(tuple(row[1:]))
        return {run_id: (columns[1:], grouped.get(run_id, [])) for run_id in run_ids}

    def execute_per_run(
        self, sql: str, run_ids: list[str]
    ) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        """`sql` (DuckDB SQL reading `$run_id`) for each run, many runs to a query (below)."""
        clickhouse, _ = self._prepare(sql, {"run_id": ""})
        return self.execute_per_run_text(clickhouse, run_ids)

    def execute_per_run_text(
        self, clickhouse: str, run_ids: list[str]
    ) -> dict[str, tuple[list[str], list[tuple[Any, ...]]]]:
        """ClickHouse SQL reading `{run_id:String}`, for each run: the per-run statements joined by
        UNION ALL, each row tagged with its run and its place in that run's result (so each run's
        rows keep the order its statement gave them)."""
        self._ensure(clickhouse)
        one = clickhouse.strip().rstrip(";")
        marker = "{run_id:String}"
        size = max(1, _MAX_QUERY // max(1, len(one)))
        found: dict[str, list[tuple[Any, ...]]] = {}
        columns: list[str] | None = None
        for start in range(0, len(run_ids), size):
            batch = run_ids[start : start + size]
            params = {f"run_{i}": run_id for i, run_id in enumerate(batch)}
            branches = [
                f"SELECT {i} AS _agenttrace_run, rowNumberInAllBlocks() AS _agenttrace_row, * "
                f"FROM ({one.replace(marker, '{run_' + str(i) + ':String}')})"
                for i in range(len(batch))
            ]
            try:
                result = self.client.query(" UNION ALL ".join(branches), parameters=params, settings=SETTINGS)
            except Exception as exc:
                raise QueryError(f"ClickHouse: {first_line(exc)}") from exc
            if columns is None and result.column_names:
                columns = list(result.column_names)[2:]
            grouped: dict[int, list[tuple[int, tuple[Any, ...]]]] = {}
            for row in result.result_rows:
                grouped.setdefault(row[0], []).append((row[1], tuple(row[2:])))
            for i, run_id in enumerate(batch):
                found[run_id] = [r for _, r in sorted(grouped.get(i, []), key=lambda x: x[0])]
        if columns is None:  # no run had a row: the names come from the statement itself
            try:
                described = self.client.query(
                    f"DESCRIBE TABLE ({one})", parameters={"run_id": ""}, settings=SETTINGS
                )
            except Exception as exc:
                raise QueryError(f"ClickHouse: {first_line(exc)}") from exc
            columns = [row[0] for row in described.result_rows]
        return {run_id: (columns, rows) for run_id, rows in found.items()}

    def records(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        columns, rows = self.execute(sql, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def report(self, name: str, **params: Any) -> list[dict[str, Any]]:
        return self.records(queries.load(f"reports/{name}.sql"), params)

    def arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        clickhouse, used = self._prepare(sql, params)
        try:
            return self.client.query_arrow(clickhouse, parameters=used or None, settings=SETTINGS)
        except Exception as exc:
            raise QueryError(f"ClickHouse: {first_line(exc)}") from exc

    # -- what analysis.Database also answers --------------------------------------------------------

    def is_supervised(self, run_id: str) -> bool:
        if self._supervised is None:
            self._supervised = {r for (r,) in self.execute("SELECT run_id FROM supervised_runs")[1]}
        return run_id in self._supervised

    @property
    def problems(self) -> list[tuple[str, str, str | None]]:
        if self._problems is None:
            rows = self.execute("SELECT run_id, reason, part FROM integrity_problems")[1]
            self._problems = [(r[0], r[1], r[2]) for r in rows]
        return list(self._problems)

    def set_url_checks(self, checks: list[tuple[str, int | None, str | None]]) -> None:
        """Live answers for `claim_evidence` (`audit --online`); before the views read them."""
        if checks:
            self.client.insert(
                "url_checks", [list(c) for c in checks], column_names=["url", "status", "error"]
            )

    def close(self) -> None:
        for name in sorted(self._defined):
            try:
                self.client.command(f"DROP TEMPORARY TABLE IF EXISTS {name}")
            except Exception:  # the session may be gone; its temporary tables go with it
                break
        self._defined.clear()
        if getattr(self.client, "_agenttrace_database", None) is self:
            self.client._agenttrace_database = None

    def __enter__(self) -> ClickHouseDatabase:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def first_line(exc: BaseException) -> str:
    """ClickHouse's message, without the query it quotes back (it can be pages long)."""
    text = str(exc).strip()
    line = next((x.strip() for x in text.splitlines() if x.strip()), type(exc).__name__)
    line = re.split(r"\. (?:In scope|In query) ", line, maxsplit=1)[0]
    return line if len(line) <= 400 else line[:400] + "..."
