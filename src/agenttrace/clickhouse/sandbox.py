"""What a user's SQL (`agenttrace query`, a `--gates` gate) may not do on ClickHouse.

ClickHouse's `readonly` setting does not make a sandbox: a read-only session still reads local
files (`file()`), fetches URLs (`url()`, `s3()`), runs programs (`executable()`) and reaches other
servers (`remote()`, `mysql()`, ...), as table functions and some as plain functions. So every
function that reaches outside the database is refused by name, wherever it appears, after the
SQL is translated, before it runs. On a server, give agenttrace a user with read-only grants on
the agenttrace and exporter tables as well.
"""

from __future__ import annotations

from ..errors import QueryError

OUTSIDE = frozenset(
    name.lower()
    for name in (
        "file", "url", "urlCluster", "s3", "s3Cluster", "gcs", "azureBlobStorage", "azureBlobStorageCluster",
        "hdfs", "hdfsCluster", "remote", "remoteSecure", "cluster", "clusterAllReplicas", "mysql",
        "postgresql", "mongodb", "redis", "sqlite", "odbc", "jdbc", "executable", "executablePool",
        "input", "python", "iceberg", "icebergS3", "icebergAzure", "icebergHDFS", "icebergLocal",
        "deltaLake", "deltaLakeAzure", "deltaLakeLocal", "hudi", "paimon", "fuzzJSON", "fuzzQuery",
        "generateRandom", "merge", "dictionary", "loop", "view", "viewIfPermitted", "viewExplain",
        "arrowFlight", "ytsaurus", "timeSeriesData", "timeSeriesMetrics", "timeSeriesTags",
        "filesystem", "fileCluster", "format", "urlEncodedFormData", "getSetting", "getSettingOrDefault",
        "currentUser", "dictGet", "dictGetOrDefault", "dictGetOrNull", "joinGet", "joinGetOrNull",
    )
)  # fmt: skip
"""Functions and table functions that read or write outside the analysed tables, or tell the
query about the server (refused in a user's SQL; agenttrace's own SQL uses none of them)."""


def ensure_inside(sql: str, dialect: str = "duckdb") -> None:
    """Raise QueryError when SQL (a user's, as written: DuckDB's dialect) calls a function that
    reaches outside the database or names another database. The translation adds none."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.errors import SqlglotError

    try:
        trees = sqlglot.parse(sql, read=dialect)
    except SqlglotError as exc:
        raise QueryError(f"cannot check the SQL for ClickHouse: {str(exc).splitlines()[0]}") from None
    for tree in trees:
        if tree is None:
            continue
        for node in tree.walk():
            name = None
            if isinstance(node, exp.Anonymous):
                name = str(node.this)
            elif isinstance(node, exp.Func):
                name = node.sql_name()
            if name is not None and name.lower() in OUTSIDE:
                raise QueryError(f"{name}() is refused on ClickHouse: it reaches outside the analysed tables")
            if isinstance(node, exp.Table) and (node.args.get("db") or node.args.get("catalog")):
                name = node.sql(dialect="clickhouse")
                raise QueryError(f"{name}: only the views and tables of the engine's database can be read")
