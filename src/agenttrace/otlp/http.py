"""OTLP/HTTP server: a thin threaded HTTP/1.1 layer over `Receiver`.

What a slow or hostile client can hold, and for how long:
- a connection (one thread, one descriptor): at most `max_connections` at once (MAX_CONNECTIONS,
  fewer when the soft RLIMIT_NOFILE is low: `receiver.descriptor_budget`); more are closed as
  they are accepted. An idle keep-alive connection is closed after IDLE_TIMEOUT_S. Once the first
  byte of a request arrives, its head and body must all be in within REQUEST_DEADLINE_S, however
  they trickle, or the connection is closed. A request head is at most MAX_HEAD_BYTES.
- nothing before its token is checked: path, method, bearer token and Content-Type are checked
  from the head, and a refused request's body is never read (the connection is closed instead).
- no processing slot while its body arrives: a slot (`Receiver.try_enter`, `max_inflight`) is
  taken only once the whole body is in, to decode and store it. The bytes of bodies being read,
  all connections together, stay under `body_budget` (BODY_BUDGET, at least `max_body`): it is
  taken BODY_CHUNK bytes at a time as they arrive, so a trickling client holds one chunk of it;
  a request that finds no room by its deadline gets 503.
"""

from __future__ import annotations

import errno
import io
import ipaddress
import logging
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import ConfigError
from .receiver import RETRY_AFTER_S, Answer, Receiver

log = logging.getLogger("agenttrace")

IDLE_TIMEOUT_S = 30.0
"""An open connection may wait this long for the first byte of its next request."""
REQUEST_DEADLINE_S = 10.0
"""From the first byte of a request to the last byte of its body."""
WRITE_TIMEOUT_S = 10.0
MAX_HEAD_BYTES = 64 * 1024
BODY_CHUNK = 64 * 1024
BODY_BUDGET = 64 << 20


class _HeadTooLarge(ConnectionError):
    pass


class _ConnectionReader(io.RawIOBase):
    """The connection's socket, read never past the current request's deadline."""

    def __init__(self, sock: socket.socket, idle_timeout: float, request_deadline: float) -> None:
        self._sock = sock
        self._idle_timeout = idle_timeout
        self._request_deadline = request_deadline
        self.deadline: float | None = None
        """Monotonic time the current request must be in by; None until its first byte."""
        self._head_left: int | None = None

    def readable(self) -> bool:
        return True

    def begin_request(self) -> None:
        self.deadline = None
        self._head_left = MAX_HEAD_BYTES

    def end_head(self) -> None:
        self._head_left = None
        if self.deadline is None:  # the whole head came in one buffered read
            self.deadline = time.monotonic() + self._request_deadline

    def readinto(self, buffer: Any) -> int:
        if self.deadline is None:
            self._sock.settimeout(self._idle_timeout)
        else:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError("request not received within its deadline")
            self._sock.settimeout(remaining)
        view = memoryview(buffer)
        if self._head_left is not None:
            if self._head_left <= 0:
                raise _HeadTooLarge(f"request head over {MAX_HEAD_BYTES} bytes")
            view = view[: self._head_left]
        n = self._sock.recv_into(view)
        if n and self.deadline is None:
            self.deadline = time.monotonic() + self._request_deadline
        if self._head_left is not None:
            self._head_left -= n
        return n


class _ByteBudget:
    """Bytes of request bodies held in memory, all connections together."""

    def __init__(self, total: int) -> None:
        self.total = total
        self._free = total
        self._cond = threading.Condition()

    def take(self, n: int, deadline: float) -> bool:
        with self._cond:
            while self._free < n:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            self._free -= n
            return True

    def give(self, n: int) -> None:
        if n:
            with self._cond:
                self._free += n
                self._cond.notify_all()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OtlpHttpServer
    timeout = IDLE_TIMEOUT_S

    def setup(self) -> None:
        super().setup()
        self.rfile.close()  # replaced: reads that keep to the request's deadline
        self._reader = _ConnectionReader(
            self.connection, self.server.idle_timeout, self.server.request_deadline
        )
        self.rfile = io.BufferedReader(self._reader, BODY_CHUNK)
        self._reserved = 0

    def handle_one_request(self) -> None:
        self._reader.begin_request()
        try:
            super().handle_one_request()
        except _HeadTooLarge:
            self.close_connection = True
            self.request_version = getattr(self, "request_version", "HTTP/1.1")
            self.requestline = getattr(self, "requestline", "")
            self._send(Answer(431, b"request head too large\n"))
        except (ConnectionError, TimeoutError):
            self.close_connection = True
        finally:
            self.server.body_budget.give(self._reserved)
            self._reserved = 0

    def handle_expect_100(self) -> bool:
        """Refuse from the head before the client sends its body (no 100 Continue then)."""
        refusal = self._precheck()
        if refusal is not None:
            self._send(refusal)
            return False
        return super().handle_expect_100()

    def do_POST(self) -> None:
        self._handle()

    def do_GET(self) -> None:
        self._handle()

    def do_PUT(self) -> None:
        self._handle()

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _headers(self) -> dict[str, str]:
        return {k.lower(): v for k, v in self.headers.items()}

    def _precheck(self) -> Answer | None:
        self._reader.end_head()
        refusal = self.server.receiver.precheck(self.command, self.path, self._headers())
        if refusal is not None:
            self.close_connection = True  # the body is not read: the connection cannot be reused
        return refusal

    def _handle(self) -> None:
        refusal = self._precheck()
        if refusal is not None:
            self._send(refusal)
            return
        receiver = self.server.receiver
        body = self._read_body(receiver.max_body)
        if isinstance(body, Answer):
            receiver.count_refusal(body.status)
            self._send(body)
            return
        if not receiver.try_enter():
            self._send(
                Answer(503, b"receiver busy, retry later\n", headers={"Retry-After": str(RETRY_AFTER_S)})
            )
            return
        try:
            answer = receiver.process(self._headers(), body, self.path, self.command)
        except Exception:  # a bug: say so, keep serving
            log.exception("agenttrace: receiver failed on a request")
            answer = Answer(500, b"internal error in the agenttrace receiver\n")
        finally:
            receiver.leave()
        del body
        self.server.body_budget.give(self._reserved)
        self._reserved = 0
        self._send(answer)

    def _read_body(self, limit: int) -> bytes | Answer:
        length = self.headers.get("Content-Length")
        if length is not None:
            try:
                size = int(length)
                if size < 0:
                    raise ValueError
            except ValueError:
                self.close_connection = True
                return Answer(400, b"invalid Content-Length\n")
            if size > limit:
                self.close_connection = True  # the body is not read: the connection cannot be reused
                return Answer(413, f"body of {size} bytes is over the {limit}-byte limit\n".encode())
            chunks: list[bytes] = []
            return self._read_into(chunks, size) or b"".join(chunks)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        if self.command == "POST":
            self.close_connection = True
            return Answer(411, b"Content-Length or chunked Transfer-Encoding required\n")
        return b""

    def _read_into(self, chunks: list[bytes], size: int) -> Answer | None:
        """Read `size` body bytes into `chunks`, taking room in the body budget as they come."""
        while size > 0:
            want = min(BODY_CHUNK, size)
            deadline = self._reader.deadline or time.monotonic()
            if not self.server.body_budget.take(want, deadline):
                self.close_connection = True
                return Answer(
                    503, b"receiver busy, retry later\n", headers={"Retry-After": str(RETRY_AFTER_S)}
                )
            self._reserved += want
            chunk = self.rfile.read(want)
            if len(chunk) < want:
                raise ConnectionError("the client closed the connection in the middle of a body")
            chunks.append(chunk)
            size -= want
        return None

    def _read_chunked(self, limit: int) -> bytes | Answer:
        chunks: list[bytes] = []
        total = 0
        while True:
            line = self.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                self.close_connection = True
                return Answer(400, b"malformed chunked body\n")
            if size == 0:
                while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass
                return b"".join(chunks)
            total += size
            if total > limit:
                self.close_connection = True
                return Answer(413, f"body is over the {limit}-byte limit\n".encode())
            refusal = self._read_into(chunks, size)
            if refusal is not None:
                return refusal
            self.rfile.readline(1024)

    def _send(self, answer: Answer) -> None:
        try:
            self.connection.settimeout(WRITE_TIMEOUT_S)
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for key, value in answer.headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)
        except OSError:  # the client is gone, or not reading: nothing more to say to it
            self.close_connection = True


class OtlpHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(
        self,
        receiver: Receiver,
        host: str,
        port: int,
        *,
        max_connections: int | None = None,
        request_deadline: float = REQUEST_DEADLINE_S,
        idle_timeout: float = IDLE_TIMEOUT_S,
        body_budget: int = BODY_BUDGET,
    ) -> None:
        self.receiver = receiver
        self.max_connections = max_connections or receiver.budget.max_connections
        self.request_deadline = request_deadline
        self.idle_timeout = idle_timeout
        self.body_budget = _ByteBudget(max(body_budget, receiver.max_body))
        self._connections = threading.BoundedSemaphore(self.max_connections)
        if ":" in host:
            self.address_family = socket.AF_INET6
        try:
            super().__init__((host, port), _Handler)
        except OSError as exc:
            if exc.errno == errno.EADDRINUSE:
                raise ConfigError(f"port {port} on {host} is in use (pick another with --port)") from None
            if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
                raise ConfigError(f"cannot listen on {host}: {exc.strerror or exc}") from None
            raise ConfigError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def process_request(self, request: Any, client_address: Any) -> None:
        if not self._connections.acquire(blocking=False):  # too many open connections
            self.shutdown_request(request)
            return
        try:
            super().process_request(request, client_address)
        except RuntimeError as exc:  # no thread for it ("can't start new thread"): drop it
            log.warning("agenttrace: cannot serve a connection: %s", exc)
            self._connections.release()
            self.shutdown_request(request)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A connection that failed: clients going away are routine, anything else is a bug."""
        if isinstance(sys.exc_info()[1], OSError):
            log.debug("agenttrace: connection from %s failed", client_address, exc_info=True)
        else:
            log.exception("agenttrace: receiver failed on a connection from %s", client_address)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
