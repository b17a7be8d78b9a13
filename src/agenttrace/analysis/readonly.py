"""Gate SQL and `agenttrace query` are read-only: one SELECT statement, nothing else."""

from __future__ import annotations

import threading
from functools import cache

import duckdb

from ..errors import QueryError

_ALLOWED = {duckdb.StatementType.SELECT}
_lock = threading.Lock()


@cache
def _parser() -> duckdb.DuckDBPyConnection:
    """A connection used only to parse (never to run) SQL: opened once per process."""
    return duckdb.connect(":memory:")


def ensure_read_only(sql: str) -> None:
    """Raise QueryError unless `sql` is exactly one SELECT (WITH ... SELECT included)."""
    try:
        with _lock:
            statements = _parser().extract_statements(sql)
    except duckdb.Error as exc:
        raise QueryError(f"cannot parse query: {str(exc).splitlines()[0]}") from exc
    if not statements:
        raise QueryError("the query is empty")
    if len(statements) > 1:
        raise QueryError(f"one statement at a time, got {len(statements)}")
    kind = statements[0].type
    if kind not in _ALLOWED:
        name = str(kind).rsplit(".", 1)[-1]
        raise QueryError(f"query is read-only: {name} statements are refused, only SELECT is allowed")
