"""`agenttrace query` is read-only: one SELECT statement, nothing else."""

from __future__ import annotations

import duckdb

from ..errors import QueryError

_ALLOWED = {duckdb.StatementType.SELECT}


def ensure_read_only(sql: str) -> None:
    """Raise QueryError unless `sql` is exactly one SELECT (WITH ... SELECT included)."""
    try:
        statements = duckdb.connect(":memory:").extract_statements(sql)
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
