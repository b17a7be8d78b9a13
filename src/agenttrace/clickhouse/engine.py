"""Which engine the analyzer runs on (`--engine`, `AGENTTRACE_ENGINE`), and the ClickHouse client.

    duckdb                                    the local store (default)
    clickhouse://USER@HOST:8123/DATABASE      a ClickHouse server over HTTP (clickhouses:// for HTTPS)
    chdb:///PATH?database=DATABASE            ClickHouse in-process (chdb), its data in PATH

The password is never part of the URL a command line shows: it comes from
`AGENTTRACE_CLICKHOUSE_PASSWORD` (a password in the URL is refused). DATABASE defaults to `otel`.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from ..errors import ConfigError, QueryError

ENGINE_ENV = "AGENTTRACE_ENGINE"
PASSWORD_ENV = "AGENTTRACE_CLICKHOUSE_PASSWORD"
DEFAULT_DATABASE = "otel"
INSTALL_HINT = "the ClickHouse engine needs `pip install 'agenttrace-audit[clickhouse]'`"


@dataclass(frozen=True)
class Engine:
    kind: str  # duckdb | clickhouse | chdb
    host: str = ""
    port: int = 8123
    user: str = "default"
    database: str = DEFAULT_DATABASE
    secure: bool = False
    path: str = ""

    @property
    def is_duckdb(self) -> bool:
        return self.kind == "duckdb"

    def __str__(self) -> str:
        if self.kind == "duckdb":
            return "duckdb"
        if self.kind == "chdb":
            return f"chdb://{self.path}?database={self.database}"
        scheme = "clickhouses" if self.secure else "clickhouse"
        return f"{scheme}://{self.user}@{self.host}:{self.port}/{self.database}"


_DATABASE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")


def _database(name: str, where: str) -> str:
    if not _DATABASE.fullmatch(name):
        raise ConfigError(f"{where}: {name!r} is not a database name (letters, digits, _ . -)")
    return name


def parse_engine(text: str | None) -> Engine:
    """`--engine` else `$AGENTTRACE_ENGINE` else duckdb. Raises ConfigError naming what is wrong."""
    raw = text if text is not None else os.environ.get(ENGINE_ENV, "")
    raw = raw.strip()
    if raw in ("", "duckdb"):
        return Engine("duckdb")
    where = "--engine" if text is not None else ENGINE_ENV
    parts = urlsplit(raw)
    query = parse_qs(parts.query)
    if parts.scheme == "chdb":
        path = unquote(parts.netloc + parts.path) if parts.netloc not in ("", "memory") else parts.path
        if parts.netloc == "memory":
            path = ":memory:"
        if not path:
            raise ConfigError(f"{where}: chdb needs a data folder, e.g. chdb:///var/lib/agenttrace-chdb")
        return Engine(
            "chdb", path=path, database=_database(query.get("database", [DEFAULT_DATABASE])[0], where)
        )
    if parts.scheme not in ("clickhouse", "clickhouses"):
        raise ConfigError(
            f"{where}: unknown engine {raw!r} (use duckdb, clickhouse://USER@HOST:8123/DATABASE or chdb:///PATH)"
        )
    if parts.password:
        raise ConfigError(f"{where}: put the password in ${PASSWORD_ENV}, not in the URL")
    if not parts.hostname:
        raise ConfigError(f"{where}: {raw!r} names no host")
    try:
        port = parts.port or (8443 if parts.scheme == "clickhouses" else 8123)
    except ValueError:
        raise ConfigError(f"{where}: {raw!r} has a bad port") from None
    database = parts.path.strip("/") or DEFAULT_DATABASE
    if "/" in database:
        raise ConfigError(f"{where}: {raw!r}: one database name after the port")
    return Engine(
        "clickhouse",
        host=parts.hostname,
        port=port,
        user=unquote(parts.username or "default"),
        database=_database(database, where),
        secure=parts.scheme == "clickhouses",
    )


def connect(engine: Engine, *, use_database: bool = True) -> Any:
    """A clickhouse_connect client on the engine's database (a session of its own: the views are
    temporary tables in it); without `use_database`, on none (`clickhouse init`: the database may
    not exist yet). Raises ConfigError when the client library is missing, QueryError when the
    server cannot be reached."""
    try:
        import clickhouse_connect
    except ImportError:
        raise ConfigError(INSTALL_HINT) from None
    # its own log lines ("Unexpected Http Driver Exception") would come before our one Error: line
    logging.getLogger("clickhouse_connect").setLevel(logging.CRITICAL)
    try:
        if engine.kind == "chdb":
            try:
                import chdb  # noqa: F401
            except ImportError:
                raise ConfigError("chdb:// needs `pip install chdb` (ClickHouse in-process)") from None
            client = clickhouse_connect.get_client(dsn=f"chdb://{engine.path}", tz_mode="aware")
            if use_database:
                from .tables import quote_identifier

                name = quote_identifier(engine.database)
                client.command(f"CREATE DATABASE IF NOT EXISTS {name}")
                client.command(f"USE {name}")
            return client
        return clickhouse_connect.get_client(
            host=engine.host,
            port=engine.port,
            username=engine.user,
            password=os.environ.get(PASSWORD_ENV, ""),
            database=engine.database if use_database else None,
            secure=engine.secure,
            connect_timeout=10,
            send_receive_timeout=300,
            autogenerate_session_id=True,
            tz_mode="aware",  # times as DuckDB gives them: aware, in UTC
        )
    except ConfigError:
        raise
    except Exception as exc:
        raise QueryError(f"cannot reach ClickHouse at {engine}: {_why(exc)}") from None


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")]+)")


def _why(exc: BaseException) -> str:
    """The cause in a few words: the OS error when there is one (urllib3 wraps it in a page)."""
    text = str(exc)
    errno = _ERRNO.search(text)
    if errno:
        return errno.group(1).strip()
    line = next((x.strip() for x in text.splitlines() if x.strip()), type(exc).__name__)
    return line if len(line) <= 300 else line[:300] + "..."
