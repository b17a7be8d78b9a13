"""The SQL sandbox every store connection is put in (DESIGN.md, "Gates"), and how DuckDB errors are
told apart. Imports DuckDB only (no pyarrow): the read paths over derived tables use it."""

from __future__ import annotations

import duckdb

SQL_ERRORS = (
    duckdb.ParserException,
    duckdb.BinderException,
    duckdb.CatalogException,
    duckdb.ConversionException,
    duckdb.InvalidTypeException,
    duckdb.PermissionException,
)
"""Errors in the SQL itself, as opposed to errors reading a part."""


def lock_down(con: duckdb.DuckDBPyConnection, root: str, files: list[str] | None = None) -> None:
    """From here on the connection reads files inside `root` only (and the single `files`), loads
    no extension, and cannot be reconfigured (DuckDB's own settings). With
    `readonly.ensure_read_only` (one SELECT), gate SQL and `agenttrace query` can read the store
    and nothing else."""
    root = root.rstrip("/") + "/"
    if files:
        con.execute("SET allowed_paths = $files", {"files": files})
    for statement in (
        "SET allowed_directories = [$root]",
        "SET enable_external_access = false",
        "SET autoinstall_known_extensions = false",
        "SET autoload_known_extensions = false",
        "SET allow_community_extensions = false",
        "SET allow_unsigned_extensions = false",
        "SET lock_configuration = true",
    ):
        con.execute(statement, {"root": root} if "$root" in statement else {})


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def sql_literal(text: str) -> str:
    """A string as a SQL literal (for file paths in `read_parquet` / `COPY`, which take no
    parameters here): quotes doubled."""
    return "'" + text.replace("'", "''") + "'"
