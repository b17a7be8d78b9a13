"""`LLMProxy`: a loopback HTTP proxy between an agent and its model APIs, recording or replaying.

Record mode (no `recording`): each request to `http://127.0.0.1:PORT/<route>/...` (routes: see
`routes`) is forwarded to the route's upstream with `http.client` (no proxy from the environment,
https with the default SSL context, connections kept alive and reused per upstream), the answer is
streamed back to the agent as it arrives (each piece written and sent at once; chunked towards the
agent when the upstream used chunked encoding or sent no length), and the exchange is recorded:
bodies to the artifact store, the `Exchange` (no bodies, secrets removed) to `on_exchange`, from a
thread of its own after the answer was sent (storing never delays an answer). Where the upstream
cannot be reached, the agent's connection is closed without an answer: its client sees a
connection error, as it would have without the proxy; the exchange is recorded as failed.

Secrets: the headers `authorization`, `x-api-key`, `api-key`, `x-goog-api-key`, `cookie`,
`set-cookie`, `proxy-authorization`, and any header whose name contains `secret`, `key` or `token`
(but not `tokens`: rate-limit counts) are recorded as `[redacted]`; so are query parameters whose
name contains `key`, `token`, `secret`, `signature` or `password`. Where the value of such a
header or parameter (8 bytes or more) appears in a request or response body (an upstream's error
message can echo the URL), the stored body has it overwritten by as many `*`: the agent got the
original bytes, the store and a replay get the masked ones.

Replay mode (`recording`): no upstream is contacted. Each request is normalised
(`normalize.normalise`) and served from the earliest recorded exchange not served yet on the same
route, method and path with the same key, byte for byte with its recorded chunk boundaries
(`speed`: None sends as fast as possible; 1.0 at the recorded pace; 2.0 twice as fast). The first
request that matches nothing sets `divergence`; it and every later request get HTTP 400 with
`x-agenttrace-replay: diverged`, `x-should-retry: false` (the OpenAI and Anthropic SDKs do not
retry it) and a JSON error body naming the divergence; or, with `then_live`, the proxy forwards
that request and every later one upstream, recording them. `from_step=N` serves the first N-1
recorded exchanges and forwards from there on. What the replay serves is recorded as exchanges too.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import logging
import queue
import re
import socket
import ssl
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

from ..store.artifact_store import ArtifactStore
from .exchanges import Exchange, Recording
from .normalize import model_of, normalise, request_diff, request_key
from .routes import split_path, upstream_target

log = logging.getLogger(__name__)

REDACTED = "[redacted]"
SECRET_HEADERS = frozenset(
    {"authorization", "x-api-key", "api-key", "x-goog-api-key", "cookie", "set-cookie", "proxy-authorization"}
)
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
DIVERGED_STATUS = 400
"""A client error: no SDK or CLI agent retries it (Gemini CLI retries every 5xx, up to 10 times
over minutes, whatever `x-should-retry` says)."""
READ_SIZE = 64 * 1024
_SECRET_NAME = re.compile(r"secret|key|token(?!s)", re.IGNORECASE)
_SECRET_PARAM = re.compile(r"key|token|secret|signature|password", re.IGNORECASE)


def is_secret_header(name: str) -> bool:
    lower = name.lower()
    return lower in SECRET_HEADERS or bool(_SECRET_NAME.search(lower))


def redact_headers(headers: list[tuple[str, str]]) -> list[list[str]]:
    return [[name, REDACTED if is_secret_header(name) else value] for name, value in headers]


def secret_values(headers: list[tuple[str, str]], path: str) -> list[bytes]:
    """The secrets a request carries (values of secret headers, without an auth scheme such as
    `Bearer `; values of secret query parameters), 8 bytes or longer, longest first."""
    found = set()
    for name, value in headers:
        if is_secret_header(name):
            found.add(value.strip())
            found.add(value.strip().split(" ", 1)[-1].strip())
    _, _, query = path.partition("?")
    for piece in query.split("&"):
        name, eq, value = piece.partition("=")
        if eq and _SECRET_PARAM.search(unquote(name)):
            found.update({value, unquote(value)})
    return sorted((v.encode() for v in found if len(v) >= 8), key=len, reverse=True)


def mask(data: bytes | None, secrets: list[bytes]) -> bytes | None:
    """`data` with each secret overwritten by as many `*` (the length kept: chunk sizes stay true)."""
    if not data:
        return data
    for secret in secrets:
        if secret in data:
            data = data.replace(secret, b"*" * len(secret))
    return data


def redact_path(path: str) -> str:
    """The path with the values of secret query parameters replaced."""
    base, sep, query = path.partition("?")
    if not sep:
        return path
    pieces = []
    for piece in query.split("&"):
        name, eq, _ = piece.partition("=")
        pieces.append(f"{name}={REDACTED}" if eq and _SECRET_PARAM.search(unquote(name)) else piece)
    return base + "?" + "&".join(pieces)


@dataclass
class Divergence:
    """Where a replay parted from its recording: the first request that matched nothing."""

    seq: int
    """The request's number in the replayed run (1, 2, ...)."""
    step: int
    """The recorded exchange expected there (its seq), or one past the recording's end."""
    route: str
    method: str
    path: str
    expected: Exchange | None
    expected_request: dict[str, Any] | None
    request: dict[str, Any]
    diff: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "step": self.step,
            "route": self.route,
            "method": self.method,
            "path": self.path,
            "expected": self.expected.to_json() if self.expected is not None else None,
            "expected_request": self.expected_request,
            "request": self.request,
            "diff": self.diff,
        }

    def message(self) -> str:
        where = f"exchange {self.step} of the recording" if self.expected else "past the recording's end"
        lines = [f"replay diverged at request {self.seq} ({self.method} /{self.route}{self.path}), {where}:"]
        return "\n".join(lines + ["  " + line for line in self.diff])


class _Pool:
    """Idle keep-alive connections to the upstreams, by (scheme, host, port)."""

    def __init__(self, timeout: float) -> None:
        self.timeout = timeout
        self._idle: dict[tuple[str, str, int | None], list[http.client.HTTPConnection]] = {}
        self._lock = threading.Lock()
        self._ssl: ssl.SSLContext | None = None

    def get(self, scheme: str, host: str, port: int | None) -> tuple[http.client.HTTPConnection, bool]:
        with self._lock:
            idle = self._idle.get((scheme, host, port))
            if idle:
                return idle.pop(), True
            if scheme == "https" and self._ssl is None:
                self._ssl = ssl.create_default_context()
        if scheme == "https":
            return http.client.HTTPSConnection(host, port, timeout=self.timeout, context=self._ssl), False
        return http.client.HTTPConnection(host, port, timeout=self.timeout), False

    def put(self, scheme: str, host: str, port: int | None, conn: http.client.HTTPConnection) -> None:
        with self._lock:
            self._idle.setdefault((scheme, host, port), []).append(conn)

    def close(self) -> None:
        with self._lock:
            for conns in self._idle.values():
                for conn in conns:
                    conn.close()
            self._idle.clear()


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    proxy: LLMProxy

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("LLM proxy: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def _serve(self) -> None:
        self.server.proxy._serve(self)

    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = do_HEAD = do_OPTIONS = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _ClientGone(Exception):
    pass


class LLMProxy:
    """Serve on 127.0.0.1:`port` (0: any free port). See the module docstring."""

    def __init__(
        self,
        *,
        upstreams: Mapping[str, str] | None = None,
        artifacts: ArtifactStore | None = None,
        on_exchange: Callable[[Exchange], None] | None = None,
        recording: Recording | None = None,
        then_live: bool = False,
        from_step: int | None = None,
        speed: float | None = None,
        workdir: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 600.0,
        keep_bodies: bool = False,
    ) -> None:
        """`workdir`: the agent's working directory, for normalisation (`normalize`); `timeout`:
        seconds an upstream may stay silent; `keep_bodies`: keep each exchange's bodies in
        `exchanges` once stored (without `artifacts` they are always kept)."""
        self.upstreams = dict(upstreams or {})
        self.artifacts = artifacts
        self.on_exchange = on_exchange
        self.recording = recording
        self.then_live = then_live
        self.from_step = from_step
        self.speed = speed
        self.workdir = workdir
        self.keep_bodies = keep_bodies or artifacts is None
        self.divergence: Divergence | None = None
        self.exchanges: list[Exchange] = []
        """Every exchange so far, finished ones, in the order they finished."""
        self._server = _Server((host, port), _Handler)
        self._server.proxy = self
        self._pool = _Pool(timeout)
        self._lock = threading.Lock()
        self._seq = 0
        self._served: set[int] = set()
        self._live = recording is None
        self._recorded_normal: dict[int, dict[str, Any]] = {}
        self._queue: queue.Queue[Exchange | None] = queue.Queue()
        self._threads: list[threading.Thread] = []

    # -- life -------------------------------------------------------------------------------------
    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def base_url(self, route: str) -> str:
        return f"{self.url}/{route}"

    @property
    def routes(self) -> set[str]:
        served = set(self.upstreams)
        if self.recording is not None:
            served |= {e.route for e in self.recording.exchanges}
        return served

    def start(self) -> LLMProxy:
        serve = threading.Thread(target=self._server.serve_forever, name="agenttrace-llm-proxy", daemon=True)
        store = threading.Thread(target=self._store_loop, name="agenttrace-llm-proxy-store", daemon=True)
        self._threads = [serve, store]
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        """Stop serving, and wait until every exchange is stored and handed on."""
        if self._threads:
            self._server.shutdown()
            self._queue.put(None)
            for thread in self._threads:
                thread.join(30)
            self._threads = []
        self._server.server_close()
        self._pool.close()

    def __enter__(self) -> LLMProxy:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def served(self) -> int:
        """How many recorded exchanges the replay has served."""
        return len(self._served)

    # -- one request ------------------------------------------------------------------------------
    def _serve(self, handler: _Handler) -> None:
        t0 = time.perf_counter()
        start_ns = time.time_ns()
        split = split_path(handler.path)
        body = self._read_body(handler)
        if split is None:
            self._send_json(handler, 404, {"error": {"message": f"no model API route for {handler.path}"}})
            return
        route, rest = split
        path = redact_path(rest)
        encoding = handler.headers.get("Content-Encoding")
        normal = normalise(
            route, handler.command, path, body, workdir=self.workdir, content_encoding=encoding
        )
        with self._lock:
            self._seq += 1
            seq = self._seq
            action, recorded = self._decide(seq, route, handler.command, path, normal)
        exchange = Exchange(
            seq=seq,
            route=route,
            method=handler.command,
            path=path,
            start_ns=start_ns,
            key=request_key(normal),
            request_headers=redact_headers(list(handler.headers.items())),
            model=model_of(body, encoding),
            request_body=body,
            mode=action,
        )
        secrets = secret_values(list(handler.headers.items()), rest)
        try:
            if action == "replay":
                assert recorded is not None
                exchange.replayed_from = recorded.seq
                self._replay(handler, recorded, exchange, t0)
            elif action == "diverged":
                self._diverged(handler, exchange)
            else:
                self._forward(handler, route, rest, body, exchange, t0)
        finally:
            exchange.end_ns = time.time_ns()
            if secrets:  # an upstream can echo a key back (in an error message): never stored
                exchange.request_body = mask(exchange.request_body, secrets)
                exchange.response_body = mask(exchange.response_body, secrets)
            self._queue.put(exchange)

    def _decide(
        self, seq: int, route: str, method: str, path: str, normal: dict[str, Any]
    ) -> tuple[str, Exchange | None]:
        """Under the lock: `record` | `live` (forward), `replay` (with the exchange), `diverged`."""
        if self.recording is None:
            return "record", None
        if self._live:
            return "live", None
        if self.divergence is not None:
            return "diverged", None
        if self.from_step is not None and len(self._served) >= self.from_step - 1:
            self._live = True
            return "live", None
        key = request_key(normal)
        unserved = [e for e in self.recording.exchanges if e.seq not in self._served]
        for candidate in unserved:
            if (candidate.route, candidate.method, candidate.path, candidate.key) == (
                route,
                method,
                path,
                key,
            ):
                self._served.add(candidate.seq)
                return "replay", candidate
        expected = next((e for e in unserved if e.route == route), None)
        expected_normal = self._normal_of(expected) if expected is not None else None
        self.divergence = Divergence(
            seq=seq,
            step=expected.seq if expected is not None else len(self.recording.exchanges) + 1,
            route=route,
            method=method,
            path=path,
            expected=expected,
            expected_request=expected_normal,
            request=normal,
            diff=request_diff(expected_normal, normal),
        )
        if self.then_live:
            self._live = True
            return "live", None
        return "diverged", None

    def _normal_of(self, exchange: Exchange) -> dict[str, Any]:
        assert self.recording is not None
        encoding = next((v for k, v in exchange.request_headers if k.lower() == "content-encoding"), None)
        return normalise(
            exchange.route,
            exchange.method,
            exchange.path,
            exchange.request_body,
            workdir=self.recording.workdir,
            content_encoding=encoding,
        )

    @staticmethod
    def _read_body(handler: _Handler) -> bytes | None:
        if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
            parts = []
            while True:
                size = int(handler.rfile.readline(1024).split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    break
                parts.append(handler.rfile.read(size))
                handler.rfile.readline(16)
            return b"".join(parts)
        length = handler.headers.get("Content-Length")
        if length is None:
            return None
        return handler.rfile.read(int(length))

    # -- answers ----------------------------------------------------------------------------------
    def _forward(
        self, handler: _Handler, route: str, rest: str, body: bytes | None, exchange: Exchange, t0: float
    ) -> None:
        base = self.upstreams.get(route)
        if base is None:
            exchange.error = f"no upstream for route {route}"
            self._send_json(handler, 502, {"error": {"message": f"agenttrace: no upstream for /{route}"}})
            exchange.status = 502
            return
        scheme, host, port, target = upstream_target(base, rest)
        dropped = HOP_BY_HOP | {"host", "expect"}  # the body is read already: no 100-continue upstream
        headers = [(k, v) for k, v in handler.headers.items() if k.lower() not in dropped]
        headers = [(k, v) for k, v in headers if k.lower() != "content-length"]
        if body is not None:
            headers.append(("Content-Length", str(len(body))))
        response = None
        for attempt in range(2):
            conn, reused = self._pool.get(scheme, host, port)
            try:
                conn.putrequest(handler.command, target, skip_accept_encoding=True)
                for name, value in headers:
                    conn.putheader(name, value)
                conn.endheaders(body)
                response = conn.getresponse()
                break
            except (OSError, http.client.HTTPException) as exc:
                conn.close()
                if reused and attempt == 0:  # a kept-alive connection the upstream had closed
                    continue
                exchange.error = f"upstream unreachable: {type(exc).__name__}: {exc}"
                self._hang_up(handler)
                return
        assert response is not None
        self._relay(handler, response, exchange, t0)
        response.close()  # read to its end: the connection is free for the next request
        if exchange.error is None and not response.will_close:
            self._pool.put(scheme, host, port, conn)
        else:
            conn.close()

    def _relay(
        self, handler: _Handler, response: http.client.HTTPResponse, exchange: Exchange, t0: float
    ) -> None:
        exchange.status, exchange.reason = response.status, response.reason
        upstream_headers = response.getheaders()
        exchange.response_headers = redact_headers(upstream_headers)
        no_body = handler.command == "HEAD" or response.status in (204, 304) or response.status < 200
        chunked = not no_body and (response.chunked or response.getheader("Content-Length") is None)
        client = True
        try:
            handler.send_response_only(response.status, response.reason)
            for name, value in upstream_headers:
                if name.lower() not in HOP_BY_HOP:
                    handler.send_header(name, value)
            if chunked:
                handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
        except OSError:
            client = False
        received = bytearray()
        try:
            while not no_body:
                data = response.read1(READ_SIZE)
                if not data:
                    break
                exchange.chunks.append([len(data), round((time.perf_counter() - t0) * 1000, 3)])
                received += data
                if client:
                    client = self._write(handler, data, chunked)
        except (OSError, http.client.HTTPException) as exc:
            exchange.error = f"upstream answer cut off: {type(exc).__name__}: {exc}"
            self._hang_up(handler)
            client = False
        if client and chunked:
            client = self._write(handler, b"", chunked)
        if not client and exchange.error is None:
            exchange.error = "the agent hung up before the answer ended"
            handler.close_connection = True
        exchange.response_body = bytes(received)

    def _replay(self, handler: _Handler, recorded: Exchange, exchange: Exchange, t0: float) -> None:
        if recorded.status is None:  # the upstream was unreachable when recorded: so it is now
            exchange.error = recorded.error or "no answer was recorded"
            self._hang_up(handler)
            return
        exchange.status, exchange.reason = recorded.status, recorded.reason
        exchange.response_headers = recorded.response_headers
        headers = [(k, v) for k, v in recorded.response_headers if v != REDACTED or not is_secret_header(k)]
        names = {k.lower() for k, _ in headers}
        body = recorded.response_body or b""
        no_body = recorded.method == "HEAD" or recorded.status in (204, 304) or recorded.status < 200
        te = next((v for k, v in headers if k.lower() == "transfer-encoding"), "")
        chunked = not no_body and ("chunked" in te.lower() or "content-length" not in names)
        try:
            handler.send_response_only(recorded.status, recorded.reason)
            for name, value in headers:
                if name.lower() not in HOP_BY_HOP:
                    handler.send_header(name, value)
            if chunked:
                handler.send_header("Transfer-Encoding", "chunked")
            handler.end_headers()
            offset = 0
            for size, ms in recorded.chunks or ([[len(body), 0]] if body else []):
                if self.speed:
                    delay = ms / 1000 / self.speed - (time.perf_counter() - t0)
                    if delay > 0:
                        time.sleep(delay)
                piece = body[offset : offset + size]
                offset += size
                exchange.chunks.append([len(piece), round((time.perf_counter() - t0) * 1000, 3)])
                if not self._write(handler, piece, chunked):
                    raise _ClientGone
            if chunked and not self._write(handler, b"", chunked):
                raise _ClientGone
        except (OSError, _ClientGone):
            exchange.error = "the agent hung up before the answer ended"
            handler.close_connection = True
        exchange.response_body = body

    def _diverged(self, handler: _Handler, exchange: Exchange) -> None:
        assert self.divergence is not None
        payload = {
            "error": {
                "type": "agenttrace_replay_diverged",
                "message": self.divergence.message(),
                # short: an agent may print it whole (the requests are on the run's root span)
                "divergence": {
                    k: v
                    for k, v in self.divergence.to_json().items()
                    if k not in ("expected", "expected_request", "request")
                },
            }
        }
        exchange.error = "replay diverged"
        exchange.status = DIVERGED_STATUS
        exchange.reason = "Replay Diverged"
        exchange.response_body = self._send_json(
            handler,
            DIVERGED_STATUS,
            payload,
            reason=exchange.reason,
            extra=[("x-agenttrace-replay", "diverged"), ("x-should-retry", "false")],
        )
        exchange.response_headers = [
            ["Content-Type", "application/json"],
            ["Content-Length", str(len(exchange.response_body))],
            ["x-agenttrace-replay", "diverged"],
            ["x-should-retry", "false"],
        ]

    # -- the wire ---------------------------------------------------------------------------------
    @staticmethod
    def _write(handler: _Handler, data: bytes, chunked: bool) -> bool:
        try:
            if chunked:
                handler.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))
            elif data:
                handler.wfile.write(data)
            return True
        except OSError:
            return False

    @staticmethod
    def _hang_up(handler: _Handler) -> None:
        """Close the agent's connection without an answer (its client sees a connection error)."""
        handler.close_connection = True
        with contextlib.suppress(OSError):
            handler.connection.shutdown(socket.SHUT_RDWR)

    @staticmethod
    def _send_json(
        handler: _Handler,
        status: int,
        payload: Any,
        *,
        reason: str | None = None,
        extra: list[tuple[str, str]] | None = None,
    ) -> bytes:
        data = json.dumps(payload).encode()
        with contextlib.suppress(OSError):
            handler.send_response_only(status, reason)
            handler.send_header("Content-Type", "application/json")
            handler.send_header("Content-Length", str(len(data)))
            for name, value in extra or ():
                handler.send_header(name, value)
            handler.end_headers()
            if handler.command != "HEAD":
                handler.wfile.write(data)
        return data

    # -- storing ----------------------------------------------------------------------------------
    def _store_loop(self) -> None:
        while (exchange := self._queue.get()) is not None:
            try:
                if self.artifacts is not None:
                    exchange.store_bodies(self.artifacts)
            except Exception as exc:  # never into the agent's way; the record says what is missing
                exchange.error = (
                    exchange.error + "; " if exchange.error else ""
                ) + f"bodies not stored: {exc}"
            with self._lock:
                self.exchanges.append(exchange)
            if self.on_exchange is not None:
                try:
                    self.on_exchange(exchange)
                except Exception:
                    log.warning("LLM proxy: on_exchange failed for exchange %d", exchange.seq, exc_info=True)


__all__ = ["DIVERGED_STATUS", "Divergence", "LLMProxy", "redact_headers", "redact_path"]
