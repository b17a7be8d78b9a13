"""Model-API calls over plain HTTP, recorded by the zero-code bootstrap (`bootstrap.install`).

An agent that calls its model with `urllib`, `requests` or `urllib3` (no SDK, so no GenAI
instrumentor sees the call) leaves no LLM step. So that such a run cannot pass `completion_signal`
silently, every request through the stdlib `http.client.HTTPConnection` (which urllib, urllib3
and requests all use) whose method and path look like a model API is recorded as a client span
`POST <path>`: `http.request.method`, `url.path` (no query string: Gemini puts its API key
there), `server.address`, `server.port`, `http.response.status_code` and
`agenttrace.http.model_api` = true, under the current span. The span starts when the request
line is written and ends when the response headers are read (or the request fails, or the
connection is closed first); the response body is never read. Other requests cost one suffix
check and make no span. Nothing here raises into the program: the program's own exceptions pass
through unchanged.

The paths are data, `MODEL_API_PATHS`, the same as the `model_api_paths` view in
`queries/views/agent_events.sql` that the gate reads (a test keeps the two equal).
"""

from __future__ import annotations

import contextlib
import http.client
from typing import Any
from urllib.parse import urlsplit

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

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
_SPAN = "_agenttrace_model_api_span"


def model_api_path(method: str, target: str) -> str | None:
    """The path of a request that looks like a model API call (`target` as written on the request
    line: a path, or an absolute URL through a proxy), else None."""
    if method.upper() not in MODEL_API_METHODS:
        return None
    path = urlsplit(target).path if "://" in target else target.split("?", 1)[0].split("#", 1)[0]
    path = path.rstrip("/")
    return path if path.endswith(MODEL_API_PATHS) else None


def install() -> bool:
    """Wrap `http.client.HTTPConnection` (once). False when it already is."""
    cls = http.client.HTTPConnection
    if getattr(cls, "_agenttrace_wrapped", False):
        return False
    original_putrequest = cls.putrequest
    original_endheaders = cls.endheaders
    original_getresponse = cls.getresponse
    original_close = cls.close

    def putrequest(self: http.client.HTTPConnection, method: str, url: str, *args: Any, **kw: Any) -> None:
        original_putrequest(self, method, url, *args, **kw)
        with contextlib.suppress(Exception):
            _start(self, method, url)

    def endheaders(self: http.client.HTTPConnection, *args: Any, **kwargs: Any) -> None:
        try:
            original_endheaders(self, *args, **kwargs)
        except BaseException as exc:  # connection refused, reset, timed out: the call failed
            _end(_take(self), error=exc)
            raise

    def getresponse(self: http.client.HTTPConnection) -> http.client.HTTPResponse:
        span = _take(self)
        if span is None:
            return original_getresponse(self)
        try:
            response = original_getresponse(self)
        except BaseException as exc:
            _end(span, error=exc)
            raise
        _end(span, status=getattr(response, "status", None))
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


def _start(conn: http.client.HTTPConnection, method: str, target: str) -> None:
    _end(_take(conn), abandoned=True)  # a request sent before whose response was never read
    path = model_api_path(method, target)
    if path is None or otel_context.get_value(otel_context._SUPPRESS_INSTRUMENTATION_KEY):
        return
    tunnel = getattr(conn, "_tunnel_host", None)  # HTTPS through a proxy: the server is the tunnel's end
    host, port = (tunnel, getattr(conn, "_tunnel_port", None)) if tunnel else (conn.host, conn.port)
    if "://" in target:  # the absolute form, to a proxy: the server is the URL's
        parts = urlsplit(target)
        host, port = parts.hostname or host, parts.port or port
    span = trace.get_tracer("agenttrace").start_span(
        f"{method.upper()} {path}",
        kind=SpanKind.CLIENT,
        attributes={
            "http.request.method": method.upper(),
            "url.path": path,
            "server.address": host,
            "server.port": port,
            MARKER: True,
        },
    )
    setattr(conn, _SPAN, span)


def _take(conn: http.client.HTTPConnection) -> Span | None:
    try:
        return conn.__dict__.pop(_SPAN, None)
    except Exception:
        return None


def _end(
    span: Span | None,
    *,
    status: int | None = None,
    error: BaseException | None = None,
    abandoned: bool = False,
) -> None:
    if span is None:
        return
    with contextlib.suppress(Exception):
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
