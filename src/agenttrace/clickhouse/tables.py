"""`agenttrace clickhouse init`: the tables agenttrace reads and writes in a ClickHouse database.

The collector's (and Rotel's) `clickhouse` exporter tables (`otel_traces`, `otel_logs`,
`otel_metrics_*`) are created only when missing, with the exporter's columns and types and no TTL;
agenttrace's own (`agenttrace_spans`, `_logs`, `_samples`, `_runs`, `_problems`) hold what
`agenttrace push` writes. The DDL is in `queries/clickhouse/tables/`.
"""

from __future__ import annotations

from typing import Any

from .. import queries
from ..errors import QueryError
from .translate import VARIANTS

EXPORTER_TABLES = (
    "otel_traces", "otel_logs", "otel_metrics_gauge", "otel_metrics_sum", "otel_metrics_histogram",
    "otel_metrics_exponential_histogram", "otel_metrics_summary",
)  # fmt: skip
AGENTTRACE_TABLES = (
    "agenttrace_spans",
    "agenttrace_logs",
    "agenttrace_samples",
    "agenttrace_runs",
    "agenttrace_problems",
)


def quote_identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def ddl(table: str, database: str) -> str:
    return queries.load(f"{VARIANTS}/tables/{table}.sql").replace("{db}", quote_identifier(database))


def init_tables(client: Any, database: str) -> list[str]:
    """Create the database and every table that is missing; return the tables as they now are."""
    try:
        client.command(f"CREATE DATABASE IF NOT EXISTS {quote_identifier(database)}")
        for table in (*EXPORTER_TABLES, *AGENTTRACE_TABLES):
            client.command(ddl(table, database))
    except Exception as exc:
        text = str(exc).strip().splitlines()
        raise QueryError(f"ClickHouse refused to create the tables: {text[0] if text else exc}") from exc
    return [*EXPORTER_TABLES, *AGENTTRACE_TABLES]
