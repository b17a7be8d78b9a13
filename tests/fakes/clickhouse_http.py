"""A ClickHouse HTTP-interface shim over chdb, for tests only.

No ClickHouse server installs here, but chdb (ClickHouse's engine in-process) does. This shim puts
ClickHouse's HTTP interface (https://clickhouse.com/docs/interfaces/http) in front of one chdb data
folder, so real clients run unchanged against it: clickhouse-connect (what agenttrace's
`--engine clickhouse://...` uses) and Rotel's `clickhouse` exporter (RowBinary inserts). It is not a
ClickHouse server: it speaks only the parts of the interface those clients use, and every SQL
statement is executed by chdb, the same engine a server runs.

What it serves:

- `GET /ping`, `GET /replicas_status`, and `GET /` without a query: `Ok.`
- `GET|POST /?query=...`: the statement is the `query` parameter, a line feed and the body (as
  ClickHouse joins them), or the body alone. `INSERT INTO t [(cols)] FORMAT F` followed by data
  (in the body, or after the statement) is streamed into chdb as format F; anything else runs as SQL,
  its result in the statement's `FORMAT` or `default_format` (TabSeparated when neither).
- `param_NAME=VALUE`: server-side query parameters (`{NAME:Type}`), also as multipart form fields.
- `database` (or the `X-ClickHouse-Database` header); `session_id`: one chdb connection per session,
  so temporary tables live as long as the session (`session_timeout`, default 60 s;
  `session_check=1` answers SESSION_NOT_FOUND); `query_id`; `default_format` (or
  `X-ClickHouse-Format`); `user`/`password`; `decompress=1` (ClickHouse's compressed blocks: LZ4,
  ZSTD or none); a `Content-Encoding` on the body (lz4, zstd, gzip, deflate); and, with
  `enable_http_compression=1`, a compressed answer in the client's first `Accept-Encoding` it knows.
  Every other parameter is a setting: it is SET on the statement's connection (a session's settings
  go back to their defaults after the statement, as a parameter's setting is for one query only).
  `wait_end_of_query`, `client_protocol_version` (answered as a server without it would: plain Native
  blocks), `buffer_size`, `quota_key`, `stacktrace`, `close_session` and `role` are accepted and
  ignored; `compress=1` (compressed answers in ClickHouse's block format) is refused.
- A GET without a session is read-only (`readonly=2`), as on a server.
- Users: `--user NAME:PASSWORD`, repeatable (default: `default` with no password), from HTTP basic
  auth, `X-ClickHouse-User`/`X-ClickHouse-Key` or the `user`/`password` parameters.
- Answers carry the headers a server sends (`X-ClickHouse-Query-Id`, `-Format`, `-Timezone`,
  `-Server-Display-Name`, `-Summary`); an error is ClickHouse's own text (`Code: N. DB::Exception: ...
  (NAME) (version V)`) with `X-ClickHouse-Exception-Code`, under the HTTP status a server gives that
  code (403 for authentication, 400 for syntax and parse errors, 404 for unknown tables, databases,
  functions, settings, 500 otherwise).

chdb runs one engine (one data folder) per process, and the shim serializes every statement with one
lock: it is for tests, not for load. Run it as a process (what tests do, so no chdb of the test process
is touched):

    python tests/fakes/clickhouse_http.py --data DIR [--port 0] [--user NAME:PASSWORD]... [--journal FILE]

It prints `clickhouse-http-shim listening on http://127.0.0.1:PORT` once it accepts connections, and
with `--journal` appends one JSON line per request (method, path, parameter names, user, statement
head, status, error, milliseconds), which tests read to see what a client sent.
"""

from __future__ import annotations

import argparse
import base64
import gzip
import json
import re
import signal
import socket
import sys
import threading
import time
import uuid
import zlib
from dataclasses import dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import chdb

NAME = "clickhouse-http-shim"

TRANSPORT = frozenset(
    {
        "query", "database", "default_format", "session_id", "session_timeout", "session_check",
        "query_id", "compress", "decompress", "user", "password", "quota_key", "buffer_size",
        "wait_end_of_query", "client_protocol_version", "stacktrace", "close_session", "role",
    }
)  # fmt: skip
"""URL parameters the HTTP interface itself reads; `param_*` are query parameters; the rest are settings."""

# The HTTP status a server answers an error code with: authentication (UNKNOWN_USER, WRONG_PASSWORD,
# REQUIRED_PASSWORD, AUTHENTICATION_FAILED) 403; parse and syntax errors 400; UNKNOWN_FUNCTION,
# _IDENTIFIER, _TABLE, _DATABASE, _SETTING 404; NOT_IMPLEMENTED 501; anything else 500.
AUTH_FAILED, SYNTAX, UNKNOWN = (
    {516, 192, 193, 194},
    {6, 27, 36, 62, 38, 26, 53, 72, 117},
    {46, 47, 60, 81, 115},
)
SESSION_NOT_FOUND, NOT_IMPLEMENTED = 372, 48

_INSERT = re.compile(
    rb"\A\s*(?P<head>INSERT\s+INTO\s+(?:(?!\bFORMAT\b|\bVALUES\b|\bSELECT\b).){1,65536}?)"
    rb"\s+FORMAT\s+(?P<format>[A-Za-z0-9_]+)[ \t]*(?:\r?\n|\Z)",
    re.I | re.S,
)
_FORMAT = re.compile(r"\bFORMAT\s+([A-Za-z0-9_]+)\s*;?\s*\Z", re.I)
_CODE = re.compile(r"Code: (\d+)\.")
_CONTENT_TYPES = {
    "tabseparated": "text/tab-separated-values; charset=UTF-8",
    "tsv": "text/tab-separated-values; charset=UTF-8",
    "csv": "text/csv; charset=UTF-8; header=absent",
}


class ShimError(Exception):
    """An error answered as ClickHouse answers it."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _from_chdb(exc: BaseException) -> ShimError:
    text = str(exc)
    start = text.find("Code: ")
    text = text[start:] if start >= 0 else f"Code: 1000. DB::Exception: {text}"
    match = _CODE.match(text)
    return ShimError(int(match.group(1)) if match else 1000, text.strip())


def _status(code: int) -> int:
    if code in AUTH_FAILED:
        return 403
    if code in SYNTAX:
        return 400
    if code in UNKNOWN:
        return 404
    if code == NOT_IMPLEMENTED:
        return 501
    return 500


def _literal(value: str) -> str:
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _identifier(name: str) -> str:
    return "`" + name.replace("\\", "\\\\").replace("`", "\\`") + "`"


def _decode_body(body: bytes, encoding: str) -> bytes:
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    if encoding == "lz4":
        import lz4.frame

        return lz4.frame.decompress(body)
    if encoding == "zstd":
        import zstandard

        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    raise ShimError(
        NOT_IMPLEMENTED, f"Code: 48. DB::Exception: {NAME}: Content-Encoding {encoding!r} (NOT_IMPLEMENTED)"
    )


def _encode_answer(data: bytes, accept: str) -> tuple[bytes, str | None]:
    for wanted in (x.split(";")[0].strip().lower() for x in accept.split(",")):
        if wanted == "gzip":
            return gzip.compress(data), "gzip"
        if wanted == "deflate":
            return zlib.compress(data), "deflate"
        if wanted == "lz4":
            import lz4.frame

            return lz4.frame.compress(data), "lz4"
        if wanted == "zstd":
            import zstandard

            return zstandard.ZstdCompressor().compress(data), "zstd"
    return data, None


def decompress_blocks(data: bytes) -> bytes:
    """ClickHouse's compressed blocks (`decompress=1`): 16 bytes of checksum, a method byte, the
    compressed size (with the 9 bytes of header) and the plain size, then the block. The checksum
    (CityHash128) is not verified."""
    out, at = bytearray(), 0
    while at < len(data):
        if len(data) - at < 25:
            raise ShimError(432, "Code: 432. DB::Exception: truncated compressed block. (UNKNOWN_CODEC)")
        method = data[at + 16]
        size = int.from_bytes(data[at + 17 : at + 21], "little")
        plain = int.from_bytes(data[at + 21 : at + 25], "little")
        block = data[at + 25 : at + 16 + size]
        if method == 0x82:
            import lz4.block

            out += lz4.block.decompress(block, uncompressed_size=plain)
        elif method == 0x90:
            import zstandard

            out += zstandard.ZstdDecompressor().decompress(block, max_output_size=plain)
        elif method == 0x02:
            out += block
        else:
            raise ShimError(
                432, f"Code: 432. DB::Exception: Unknown codec family code: {method}. (UNKNOWN_CODEC)"
            )
        at += 16 + size
    return bytes(out)


@dataclass
class Session:
    connection: Any
    timeout: float
    used: float = field(default_factory=time.monotonic)


@dataclass
class Answer:
    status: int
    body: bytes
    headers: dict[str, str]


class Shim:
    """One chdb data folder behind ClickHouse's HTTP interface, on 127.0.0.1."""

    def __init__(
        self,
        data: Path,
        *,
        port: int = 0,
        users: dict[str, str] | None = None,
        journal: Path | None = None,
    ) -> None:
        self.data = Path(data)
        self.data.mkdir(parents=True, exist_ok=True)
        self.users = users if users is not None else {"default": ""}
        self.journal = journal
        self.lock = threading.Lock()
        self.root = chdb.connect(str(self.data))  # keeps the engine up between statements
        version = self.root.query("SELECT version(), timezone()", "TabSeparated").bytes().decode()
        self.version, self.timezone = version.rstrip("\n").split("\t")
        self.sessions: dict[str, Session] = {}
        shim = self

        class Handler(_Handler):
            server_shim = shim

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Shim:
        self.thread = threading.Thread(target=self.server.serve_forever, name=NAME, daemon=True)
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        with self.lock:
            for session in self.sessions.values():
                session.connection.close()
            self.sessions.clear()
            self.root.close()

    def __enter__(self) -> Shim:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- one request --------------------------------------------------------------------------------

    def authenticate(self, headers: Any, params: dict[str, str]) -> str:
        user, password = params.get("user"), params.get("password")
        auth = headers.get("Authorization", "")
        if auth.lower().startswith("basic "):
            try:
                user, _, password = base64.b64decode(auth[6:].strip()).decode().partition(":")
            except ValueError:
                user, password = "", None
        if headers.get("X-ClickHouse-User") is not None:
            user, password = headers.get("X-ClickHouse-User"), headers.get("X-ClickHouse-Key", "")
        user = user or "default"
        if self.users.get(user) != (password or ""):
            raise ShimError(
                516,
                f"Code: 516. DB::Exception: {user}: Authentication failed: password is incorrect, "
                "or there is no user with such name. (AUTHENTICATION_FAILED)",
            )
        return user

    def _session(self, params: dict[str, str]) -> tuple[Any, bool]:
        """The connection a statement runs on, and whether it is the session's (kept) or its own."""
        now = time.monotonic()
        for key in [k for k, s in self.sessions.items() if now - s.used > s.timeout]:
            self.sessions.pop(key).connection.close()
        session_id = params.get("session_id")
        if not session_id:
            return chdb.connect(str(self.data)), False
        session = self.sessions.get(session_id)
        if session is None:
            if params.get("session_check") == "1":
                raise ShimError(
                    SESSION_NOT_FOUND,
                    f"Code: 372. DB::Exception: Session {session_id} not found. (SESSION_NOT_FOUND)",
                )
            timeout = min(float(params.get("session_timeout") or 60), 3600.0)
            session = self.sessions[session_id] = Session(chdb.connect(str(self.data)), timeout)
        session.used = now
        return session.connection, True

    def execute(self, method: str, params: dict[str, str], body: bytes, accept: str) -> Answer:
        """Run one request's statement; raises ShimError."""
        if params.get("compress") == "1":
            raise ShimError(
                NOT_IMPLEMENTED, f"Code: 48. DB::Exception: {NAME}: compress=1. (NOT_IMPLEMENTED)"
            )
        if params.get("decompress") == "1" and body:
            body = decompress_blocks(body)
        query = params.get("query", "")
        statement = (query.encode() + b"\n" + body) if query and body else (query.encode() or body)
        if not statement.strip():
            raise ShimError(62, "Code: 62. DB::Exception: Empty query. (SYNTAX_ERROR)")
        settings = {k: v for k, v in params.items() if k not in TRANSPORT and not k.startswith("param_")}
        bound = {k[len("param_") :]: v for k, v in params.items() if k.startswith("param_")}
        default_format = params.get("default_format") or "TabSeparated"
        query_id = params.get("query_id") or str(uuid.uuid4())
        with self.lock:
            connection, kept = self._session(params)
            try:
                if params.get("database"):
                    self._run(connection, f"USE {_identifier(params['database'])}")
                if method == "GET" and not kept:
                    settings.setdefault("readonly", "2")
                if settings:
                    values = ", ".join(f"{_identifier(n)} = {_literal(v)}" for n, v in settings.items())
                    self._run(connection, f"SET {values}")
                try:
                    data, fmt, result = self._statement(connection, statement, default_format, bound)
                finally:
                    if kept and settings:
                        names = ", ".join(f"{_identifier(n)} = DEFAULT" for n in settings)
                        self._run(connection, f"SET {names}")
            finally:
                if not kept:
                    connection.close()
        timezone = settings.get("session_timezone") or self.timezone
        summary = {
            "read_rows": str(result.get("read_rows", 0)),
            "read_bytes": str(result.get("read_bytes", 0)),
            "written_rows": str(result.get("written_rows", 0)),
            "written_bytes": str(result.get("written_bytes", 0)),
            "total_rows_to_read": str(result.get("read_rows", 0)),
            "result_rows": str(result.get("result_rows", 0)),
            "result_bytes": str(len(data)),
            "elapsed_ns": str(int(result.get("elapsed", 0.0) * 1e9)),
        }
        headers = {
            "X-ClickHouse-Query-Id": query_id,
            "X-ClickHouse-Format": fmt,
            "X-ClickHouse-Timezone": timezone,
            "X-ClickHouse-Server-Display-Name": NAME,
            "X-ClickHouse-Summary": json.dumps(summary, separators=(",", ":")),
            "Content-Type": _CONTENT_TYPES.get(fmt.lower(), "application/octet-stream"),
        }
        if data and settings.get("enable_http_compression") == "1":
            data, encoding = _encode_answer(data, accept)
            if encoding:
                headers["Content-Encoding"] = encoding
        if params.get("session_id"):
            headers["X-ClickHouse-Session-Id"] = params["session_id"]
        return Answer(200, data, headers)

    def _run(self, connection: Any, sql: str) -> None:
        try:
            connection.query(sql, "TabSeparated")
        except Exception as exc:
            raise _from_chdb(exc) from None

    def _statement(
        self, connection: Any, statement: bytes, default_format: str, bound: dict[str, str]
    ) -> tuple[bytes, str, dict[str, Any]]:
        insert = _INSERT.match(statement)
        if insert is not None:
            fmt = insert.group("format").decode()
            data = statement[insert.end() :]
            try:
                with connection.send_insert(insert.group("head").decode(), fmt) as inserter:
                    if data:
                        inserter.append(data)
                    done = inserter.finish()
            except Exception as exc:
                raise _from_chdb(exc) from None
            return (
                b"",
                fmt,
                {
                    "written_rows": done.rows_written,
                    "written_bytes": done.bytes_written,
                    "elapsed": done.elapsed,
                },
            )
        try:
            sql = statement.decode()
        except UnicodeDecodeError:
            raise ShimError(
                62, "Code: 62. DB::Exception: the statement is not UTF-8. (SYNTAX_ERROR)"
            ) from None
        named = _FORMAT.search(sql)
        fmt = named.group(1) if named else default_format
        try:
            result = connection.query(sql, default_format, params=bound)
        except Exception as exc:
            raise _from_chdb(exc) from None
        data = result.bytes()
        stats = {
            "read_rows": result.storage_rows_read(),
            "read_bytes": result.storage_bytes_read(),
            "written_rows": result.rows_written(),
            "written_bytes": result.bytes_written(),
            "result_rows": result.rows_read(),
            "elapsed": result.elapsed(),
        }
        return data, fmt, stats

    def record(self, entry: dict[str, Any]) -> None:
        if self.journal is not None:
            with self.lock, self.journal.open("a") as out:
                out.write(json.dumps(entry) + "\n")


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms delayed-ACK stall each
    server_version = NAME
    server_shim: Shim

    def log_message(self, format: str, *args: Any) -> None:  # the journal says what happened
        pass

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _handle(self, method: str) -> None:
        started = time.monotonic()
        shim = self.server_shim
        parts = urlsplit(self.path)
        params = dict(parse_qsl(parts.query, keep_blank_values=True))
        for header, param in (
            ("X-ClickHouse-Database", "database"),
            ("X-ClickHouse-Format", "default_format"),
        ):
            if self.headers.get(header) and param not in params:
                params[param] = self.headers[header]
        entry: dict[str, Any] = {
            "method": method,
            "path": parts.path,
            "session": bool(params.get("session_id")),
            "params": sorted(
                k for k in params if k not in ("query", "password") and not k.startswith("param_")
            ),
        }
        try:
            body = self._body()
            if parts.path in ("/ping", "/replicas_status") or (
                parts.path == "/" and method == "GET" and not params.get("query")
            ):
                answer = Answer(200, b"Ok.\n", {"Content-Type": "text/html; charset=UTF-8"})
            elif parts.path != "/":
                answer = Answer(
                    404, f"There is no handle {parts.path}\n".encode(), {"Content-Type": "text/plain"}
                )
            else:
                body = _decode_body(body, self.headers.get("Content-Encoding", ""))
                content_type = self.headers.get("Content-Type", "")
                if content_type.lower().startswith("multipart/form-data"):
                    body = self._form(content_type, body, params)
                entry["user"] = shim.authenticate(self.headers, params)
                head = params.get("query") or body[:2000].decode(errors="replace")
                if head.lstrip()[:6].upper() == "INSERT":  # not the data after it
                    head = head.split("\n", 1)[0]
                entry["statement"] = " ".join(head.split())[:2000]
                answer = shim.execute(method, params, body, self.headers.get("Accept-Encoding", ""))
        except ShimError as exc:
            text = f"{exc.message} (version {shim.version})\n"
            answer = Answer(
                _status(exc.code),
                text.encode(),
                {"Content-Type": "text/plain; charset=UTF-8", "X-ClickHouse-Exception-Code": str(exc.code)},
            )
            entry["error"] = exc.message[:500]
        except Exception as exc:  # a bug of the shim: say so as a ClickHouse error would
            answer = Answer(
                500,
                f"Code: 1001. DB::Exception: {NAME}: {exc!r}\n".encode(),
                {"X-ClickHouse-Exception-Code": "1001"},
            )
            entry["error"] = repr(exc)
        entry["status"] = answer.status
        entry["ms"] = round((time.monotonic() - started) * 1000, 1)
        shim.record(entry)
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(answer.body)))
        self.send_header("Keep-Alive", "timeout=10")
        self.end_headers()
        self.wfile.write(answer.body)

    def _form(self, content_type: str, body: bytes, params: dict[str, str]) -> bytes:
        """Multipart fields (`query`, `param_*`) into params; an external data file is refused."""
        message = BytesParser(policy=HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + body
        )
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if part.get_filename() is not None:
                raise ShimError(
                    NOT_IMPLEMENTED, f"Code: 48. DB::Exception: {NAME}: external data. (NOT_IMPLEMENTED)"
                )
            payload = part.get_payload(decode=True) or b""
            if name:
                params[str(name)] = payload.decode()
        return b""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="chdb's data folder")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed)")
    parser.add_argument(
        "--user",
        action="append",
        metavar="NAME[:PASSWORD]",
        help="a user it accepts (repeatable; default: `default` with no password)",
    )
    parser.add_argument("--journal", type=Path, help="append one JSON line per request here")
    args = parser.parse_args(argv)
    users = dict(u.partition(":")[::2] for u in args.user) if args.user else None
    shim = Shim(args.data, port=args.port, users=users, journal=args.journal)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    shim.start()
    with socket.create_connection(("127.0.0.1", shim.port), timeout=5):
        pass
    print(f"{NAME} listening on {shim.url} (chdb {shim.version}, data {args.data})", flush=True)
    stop.wait()
    shim.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
