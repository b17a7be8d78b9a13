"""Model-API calls over plain HTTP, recorded by the zero-code bootstrap (installed at a program's
first HTTP request; tracing is set up at its first model call).

An agent that calls its model with `urllib`, `requests` or `urllib3` (no SDK, so no GenAI
instrumentor sees the call) leaves no LLM step. So that such a run cannot pass `completion_signal`
silently, every request through the stdlib `http.client.HTTPConnection` (which urllib, urllib3
and requests all use) whose method and path look like a model API is recorded as a client span
`POST <path>`: `http.request.method`, `url.path` (no query string: Gemini puts its API key
there), `server.address`, `server.port`, `http.response.status_code` and
`agenttrace.http.model_api` = true, under the current span. The span starts when the request
line is written and ends when the response headers are read (or the request fails, or the
connection is closed first). Other requests cost one suffix check and make no span. Nothing here
raises into the program: the program's own exceptions pass through unchanged.

The model's answer: the hook never reads a response body itself, but as the program reads the body
of a successful model-API response (`read`, `read(amt)`, `readinto`, `read1`, `readline`, and
urllib3's own chunk reads: the response's socket file is wrapped, `_Tee`) it keeps a copy of the
bytes read, up to `ANSWER_CAP` (past that it gives up). When the program has read the body to its
end (or, for a stream, closes it after the model said how it finished), `http_answers.describe` reads the
copy, and an answer that says how it finished becomes an LLM span `chat <model>`, a child of the
`POST <path>` span, from the request to the end of the body: `gen_ai.operation.name`,
`gen_ai.provider.name`, `gen_ai.request.model` (from the request's JSON body or Gemini's path),
`gen_ai.response.model`, `gen_ai.response.finish_reasons` (as the provider said it),
`gen_ai.usage.input_tokens` / `output_tokens`, the names of the tools the model asked for in
`gen_ai.output.messages` (no content), and `agenttrace.http.described` = true. A body never read
to its end, too large, or of no known shape makes no LLM span.

The paths are data, `MODEL_API_PATHS`, the same as the `model_api_paths` view in
`queries/views/agent_events.sql` that the gate reads (a test keeps the two equal).
"""

from __future__ import annotations

import contextlib
import http.client
import time
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

if TYPE_CHECKING:
    from opentelemetry.trace import Span

    from .http_answers import Answer

# Imported by the bootstrap at a program's first HTTP request, so it imports little itself: the
# OpenTelemetry API and SDK come at the first request that looks like a model call (`_start`).

MODEL_API_PATHS: tuple[str, ...] = (
    "/chat/completions",  # OpenAI and every OpenAI-compatible server (vLLM, LM Studio, OpenRouter, ...)
    "/completions",  # OpenAI-compatible text completions
    "/responses",  # OpenAI Responses API
    "/v1/messages",  # Anthropic Messages API and Anthropic-compatible servers
    ":generateContent",  # Gemini / Vertex AI
    ":streamGenerateContent",  # Gemini / Vertex AI, streamed
    "/api/chat",  # Ollama
    "/api/generate",  # Ollama
    "/embeddings",  # OpenAI-compatible embeddings
)
"""How the path of a model API request ends (after its query string is dropped)."""

MODEL_API_METHODS: tuple[str, ...] = ("POST",)
"""Model calls are POSTs: a GET of the same path (listing stored responses, say) is no call."""

MARKER = "agenttrace.http.model_api"
DESCRIBED = "agenttrace.http.described"
ANSWER_CAP = 4 * 1024 * 1024
"""The most bytes of a response body kept (and, compressed, of it decompressed) to describe it."""
_SPAN = "_agenttrace_model_api_span"


class _Call:
    __slots__ = ("path", "request_body", "span", "start_ns")

    def __init__(self, span: Span, start_ns: int, path: str) -> None:
        self.span = span
        self.start_ns = start_ns
        self.path = path
        self.request_body: Any = None


def model_api_path(method: str, target: str) -> str | None:
    """The path of a request that looks like a model API call (`target` as written on the request
    line: a path, or an absolute URL through a proxy), else None."""
    if method.upper() not in MODEL_API_METHODS:
        return None
    path = urlsplit(target).path if "://" in target else target.split("?", 1)[0].split("#", 1)[0]
    path = path.rstrip("/")
    return path if path.endswith(MODEL_API_PATHS) else None


def install() -> bool:
    """Wrap `http.client.HTTPConnection` and `HTTPResponse` (once). False when they already are."""
    cls = http.client.HTTPConnection
    if getattr(cls, "_agenttrace_wrapped", False):
        return False
    # the bootstrap's stub, when the first request is still to come: what it stands for
    original_putrequest = getattr(cls.putrequest, "_agenttrace_original", cls.putrequest)
    original_endheaders = cls.endheaders
    original_getresponse = cls.getresponse
    original_close = cls.close

    def putrequest(self: http.client.HTTPConnection, method: str, url: str, *args: Any, **kw: Any) -> None:
        original_putrequest(self, method, url, *args, **kw)
        with contextlib.suppress(Exception):
            _start(self, method, url)

    def endheaders(self: http.client.HTTPConnection, *args: Any, **kwargs: Any) -> None:
        with contextlib.suppress(Exception):
            call = self.__dict__.get(_SPAN)
            if call is not None:  # the request's body, when it comes here (urllib): its model
                call.request_body = args[0] if args else kwargs.get("message_body")
        try:
            original_endheaders(self, *args, **kwargs)
        except BaseException as exc:  # connection refused, reset, timed out: the call failed
            _end(_take(self), error=exc)
            raise

    def getresponse(self: http.client.HTTPConnection) -> http.client.HTTPResponse:
        call = _take(self)
        if call is None:
            return original_getresponse(self)
        try:
            response = original_getresponse(self)
        except BaseException as exc:
            _end(call, error=exc)
            raise
        status = getattr(response, "status", None)
        _end(call, status=status)
        with contextlib.suppress(Exception):
            answers = not call.path.endswith("/embeddings")
            if isinstance(status, int) and 200 <= status < 300 and answers and response.fp is not None:
                response.fp = _Tee(response, call)  # type: ignore[assignment]
        return response

    def close(self: http.client.HTTPConnection) -> None:
        _end(_take(self), abandoned=True)
        original_close(self)

    cls.putrequest = putrequest  # type: ignore[method-assign]
    cls.endheaders = endheaders  # type: ignore[method-assign]
    cls.getresponse = getresponse  # type: ignore[method-assign]
    cls.close = close  # type: ignore[method-assign]
    cls._agenttrace_wrapped = True  # type: ignore[attr-defined]
    return True


class _Tee:
    """The response's socket file, as http.client (and urllib3, which reads chunks itself) read it:
    each read passes through unchanged, and what it returned is copied (the raw body, with its
    chunked framing) until the body ends, the file is closed, or the copy passes `ANSWER_CAP`."""

    def __init__(self, response: http.client.HTTPResponse, call: _Call) -> None:
        self._fp = response.fp
        self._call = call
        self._length = None if response.chunked else response.length
        self._chunked = bool(response.chunked)
        self._type = response.headers.get("Content-Type") or ""
        self._encoding = (response.headers.get("Content-Encoding") or "").strip().lower()
        self._copy: bytearray | None = bytearray()
        self._eof = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self._fp, name)

    def read(self, *args: Any) -> Any:
        return self._took(self._fp.read(*args))

    def read1(self, *args: Any) -> Any:
        return self._took(self._fp.read1(*args))

    def readline(self, *args: Any) -> Any:
        return self._took(self._fp.readline(*args))

    def readinto(self, b: Any) -> Any:
        n = self._fp.readinto(b)
        if self._copy is not None:
            try:
                self._took(memoryview(b).cast("B")[:n])
            except Exception:
                self._copy = None  # what was read could not be copied: no description
        return n

    def peek(self, *args: Any) -> Any:
        return self._fp.peek(*args)

    def close(self) -> None:
        self._fp.close()
        self._done()

    def _took(self, data: Any) -> Any:
        if self._copy is not None:
            with contextlib.suppress(Exception):
                if not data:
                    self._eof = True
                elif len(self._copy) + len(data) > ANSWER_CAP:
                    self._copy = None  # too large to keep: no description
                else:
                    self._copy += data
                if self._length is not None and self._copy is not None and len(self._copy) >= self._length:
                    self._done()
        return data

    def _done(self) -> None:
        copy, self._copy = self._copy, None
        if copy is None:
            return
        with contextlib.suppress(Exception):
            import zlib

            from .http_answers import describe

            if self._chunked:
                data, ended = _dechunk(bytes(copy))
            else:
                data, ended = bytes(copy), self._eof if self._length is None else len(copy) >= self._length
            if self._encoding in ("gzip", "x-gzip", "deflate"):
                decompressor = zlib.decompressobj(zlib.MAX_WBITS | 32)  # gzip or zlib, by its header
                data = decompressor.decompress(data, ANSWER_CAP + 1)
                if len(data) > ANSWER_CAP or (ended and not decompressor.eof):
                    return
            elif self._encoding not in ("", "identity"):
                return
            answer = describe(data, self._type, ended=ended)
            if answer is not None:
                _record(self._call, answer)


def _dechunk(raw: bytes) -> tuple[bytes, bool]:
    """The body in chunked framing, and whether its last chunk was there."""
    body, at = bytearray(), 0
    while (line_end := raw.find(b"\n", at)) >= 0:
        size = int(raw[at:line_end].split(b";", 1)[0].strip(), 16)
        if size == 0:
            return bytes(body), True
        body += raw[line_end + 1 : line_end + 1 + size]
        at = line_end + 1 + size + 2
        if at > len(raw):
            break
    return bytes(body), False


def _request_model(call: _Call) -> str | None:
    import json
    import re

    with contextlib.suppress(Exception):
        if isinstance(call.request_body, (bytes, bytearray, str)) and len(call.request_body) <= ANSWER_CAP:
            model = json.loads(call.request_body).get("model")
            if isinstance(model, str) and model:
                return model
    found = re.search(r"/models/([^/:]+):\w+$", call.path)  # Gemini names the model in the path
    return found.group(1) if found else None


def _record(call: _Call, answer: Answer) -> None:
    import json

    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    requested = _request_model(call)
    model = answer.model or requested
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": answer.operation,
        "gen_ai.response.finish_reasons": [answer.finish_reason],
        DESCRIBED: True,
    }
    for key, value in (
        ("gen_ai.provider.name", answer.provider),
        ("gen_ai.request.model", requested),
        ("gen_ai.response.model", answer.model),
        ("gen_ai.usage.input_tokens", answer.input_tokens),
        ("gen_ai.usage.output_tokens", answer.output_tokens),
    ):
        if value is not None:
            attributes[key] = value
    if answer.tool_calls:
        parts = [{"type": "tool_call", "id": i, "name": n} if i else {"type": "tool_call", "name": n}
                 for i, n in answer.tool_calls]  # fmt: skip
        message = {"role": "assistant", "parts": parts, "finish_reason": answer.finish_reason}
        attributes["gen_ai.output.messages"] = json.dumps([message])
    span = trace.get_tracer("agenttrace").start_span(
        f"{answer.operation} {model}" if model else answer.operation,
        context=trace.set_span_in_context(call.span),
        kind=SpanKind.CLIENT,
        attributes=attributes,
        start_time=call.start_ns,
    )
    span.end()


def _start(conn: http.client.HTTPConnection, method: str, target: str) -> None:
    _end(_take(conn), abandoned=True)  # a request sent before whose response was never read
    path = model_api_path(method, target)
    if path is None:
        return
    from . import bootstrap

    if not bootstrap.activate():  # the first model call of the process sets tracing up
        return
    from opentelemetry import context as otel_context
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    if otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
        return
    tunnel = getattr(conn, "_tunnel_host", None)  # HTTPS through a proxy: the server is the tunnel's end
    host, port = (tunnel, getattr(conn, "_tunnel_port", None)) if tunnel else (conn.host, conn.port)
    if "://" in target:  # the absolute form, to a proxy: the server is the URL's
        parts = urlsplit(target)
        host, port = parts.hostname or host, parts.port or port
    start_ns = time.time_ns()
    span = trace.get_tracer("agenttrace").start_span(
        f"{method.upper()} {path}",
        context=bootstrap.parent_context(),
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": method.upper(),
            "url.path": path,
            "server.address": host,
            "server.port": port,
            MARKER: True,
        },
        start_time=start_ns,
    )
    setattr(conn, _SPAN, _Call(span, start_ns, path))


def _take(conn: http.client.HTTPConnection) -> _Call | None:
    try:
        return conn.__dict__.pop(_SPAN, None)
    except Exception:
        return None


def _end(
    call: _Call | None,
    *,
    status: int | None = None,
    error: BaseException | None = None,
    abandoned: bool = False,
) -> None:
    if call is None:
        return
    span = call.span
    with contextlib.suppress(Exception):
        from opentelemetry.trace import Status, StatusCode

        if status is not None:
            span.set_attribute("http.response.status_code", status)
            if status >= 400:
                span.set_status(Status(StatusCode.ERROR, f"HTTP {status}"))
        elif error is not None:
            span.set_attribute("error.type", type(error).__qualname__)
            span.record_exception(error)
            span.set_status(Status(StatusCode.ERROR, f"{type(error).__name__}: {error}"))
        elif abandoned:
            span.set_status(Status(StatusCode.ERROR, "the connection was closed before a response was read"))
        span.end()
