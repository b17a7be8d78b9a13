"""OTLP/HTTP server: a thin threaded HTTP/1.1 layer over `Receiver`."""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from ..errors import ConfigError
from .receiver import RETRY_AFTER_S, Answer, Receiver

log = logging.getLogger("agenttrace")

MAX_CONNECTIONS = 256
SOCKET_TIMEOUT_S = 30


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: OtlpHttpServer
    timeout = SOCKET_TIMEOUT_S

    def do_POST(self) -> None:
        self._handle("POST")

    def do_GET(self) -> None:
        self._handle("GET")

    def do_PUT(self) -> None:
        self._handle("PUT")

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def _handle(self, method: str) -> None:
        receiver = self.server.receiver
        if not receiver.try_enter():
            self.close_connection = True
            self._send(
                Answer(503, b"receiver busy, retry later\n", headers={"Retry-After": str(RETRY_AFTER_S)})
            )
            return
        try:
            body_or_answer = self._read_body(receiver.max_body)
            if isinstance(body_or_answer, Answer):
                answer = body_or_answer
                receiver.count_refusal(answer.status)
            else:
                headers = {k.lower(): v for k, v in self.headers.items()}
                answer = receiver.handle_http(method, self.path, headers, body_or_answer)
        except (ConnectionError, TimeoutError):
            self.close_connection = True
            return
        except Exception:  # a bug: say so, keep serving
            log.exception("agenttrace: receiver failed on a request")
            answer = Answer(500, b"internal error in the agenttrace receiver\n")
        finally:
            receiver.leave()
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
            return self.rfile.read(size)
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            return self._read_chunked(limit)
        if self.command == "POST":
            self.close_connection = True
            return Answer(411, b"Content-Length or chunked Transfer-Encoding required\n")
        return b""

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
            chunks.append(self.rfile.read(size))
            self.rfile.readline(1024)

    def _send(self, answer: Answer) -> None:
        try:
            self.send_response(answer.status)
            self.send_header("Content-Type", answer.content_type)
            self.send_header("Content-Length", str(len(answer.body)))
            for key, value in answer.headers.items():
                self.send_header(key, value)
            if self.close_connection:
                self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(answer.body)
        except (ConnectionError, TimeoutError):
            self.close_connection = True


class OtlpHttpServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, receiver: Receiver, host: str, port: int) -> None:
        self.receiver = receiver
        self._connections = threading.BoundedSemaphore(MAX_CONNECTIONS)
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
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._connections.release()


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
