"""Which LLM APIs the record/replay proxy serves, where they go upstream, and the agent's env.

The proxy serves each route under its own path prefix; the prefix stands for the upstream base URL
exactly, so `http://127.0.0.1:PORT/openai/chat/completions` goes to `<upstream>/chat/completions`
(query string kept).

- `openai`: the agent's `OPENAI_BASE_URL`; upstream: the supervisor's `OPENAI_BASE_URL`, else
  `https://api.openai.com/v1`;
- `anthropic`: `ANTHROPIC_BASE_URL`; upstream: the same variable, else `https://api.anthropic.com`;
- `gemini`: `GOOGLE_GEMINI_BASE_URL`; upstream: the same variable, else
  `https://generativelanguage.googleapis.com`;
- `llm` (generic): the agent's `AGENTTRACE_LLM_PROXY`; upstream: the supervisor's
  `AGENTTRACE_LLM_UPSTREAM` (no default: the route exists only when it is set).

The generic route is for any other HTTP model API: set `AGENTTRACE_LLM_UPSTREAM` to its base URL
in `agenttrace run`'s environment, and have the agent use `$AGENTTRACE_LLM_PROXY` as its base URL.
Codex reads its provider's `base_url` from its config: `codex_base_url(proxy)` is the value for
`-c model_providers.<name>.base_url=...`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol
from urllib.parse import urlsplit

from ..errors import ConfigError

GENERIC_UPSTREAM_ENV = "AGENTTRACE_LLM_UPSTREAM"
"""In the supervisor's environment: the upstream base URL of the generic route."""
GENERIC_PROXY_ENV = "AGENTTRACE_LLM_PROXY"
"""In the agent's environment: the proxy's base URL for the generic route."""


@dataclass(frozen=True)
class Route:
    name: str
    agent_env: str
    """The variable that points the agent at the proxy."""
    upstream_env: str
    """The variable, in the supervisor's environment, naming the real upstream."""
    default_upstream: str | None


ROUTES: tuple[Route, ...] = (
    Route("openai", "OPENAI_BASE_URL", "OPENAI_BASE_URL", "https://api.openai.com/v1"),
    Route("anthropic", "ANTHROPIC_BASE_URL", "ANTHROPIC_BASE_URL", "https://api.anthropic.com"),
    Route(
        "gemini",
        "GOOGLE_GEMINI_BASE_URL",
        "GOOGLE_GEMINI_BASE_URL",
        "https://generativelanguage.googleapis.com",
    ),
    Route("llm", GENERIC_PROXY_ENV, GENERIC_UPSTREAM_ENV, None),
)
BY_NAME = {r.name: r for r in ROUTES}


class HasBaseUrl(Protocol):
    def base_url(self, route: str) -> str: ...


def upstreams(environ: Mapping[str, str]) -> dict[str, str]:
    """Each route's upstream base URL (no trailing slash), from the supervisor's environment.
    Raises ConfigError for a value that is not an http(s) URL."""
    found: dict[str, str] = {}
    for route in ROUTES:
        value = (environ.get(route.upstream_env) or "").strip() or route.default_upstream
        if not value:
            continue
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"{route.upstream_env}={value!r} is not an http(s) URL")
        found[route.name] = value.rstrip("/")
    return found


def agent_env(proxy: HasBaseUrl, routes: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variables that point the agent at the proxy: one per route the proxy serves (`routes`:
    the proxy's upstreams; all routes when not given)."""
    names = [r for r in ROUTES if routes is None or r.name in routes]
    return {r.agent_env: proxy.base_url(r.name) for r in names}


def codex_base_url(proxy: HasBaseUrl) -> str:
    """Codex's `model_providers.<x>.base_url` (the OpenAI Responses API's base, with `/v1`)."""
    return proxy.base_url("openai")


def split_path(path: str) -> tuple[str, str] | None:
    """`/openai/chat/completions?x=1` -> (`openai`, `/chat/completions?x=1`); None for no route."""
    head, _, rest = path.lstrip("/").partition("/")
    name, _, query = head.partition("?")
    if name not in BY_NAME:
        return None
    tail = "/" + rest if rest or not query else ""
    return name, tail + ("?" + query if query else "")


def upstream_target(base: str, rest: str) -> tuple[str, str, int | None, str]:
    """(scheme, host, port, request target) for `rest` (path+query) under the upstream `base`."""
    parts = urlsplit(base)
    prefix = parts.path.rstrip("/")
    path = rest if rest.startswith("/") else "/" + rest
    if path == "/" and prefix:
        path = ""
    target = prefix + path
    if not target or target.startswith("?"):
        target = "/" + target
    return parts.scheme, parts.hostname or "", parts.port, target


__all__ = [
    "BY_NAME",
    "GENERIC_PROXY_ENV",
    "GENERIC_UPSTREAM_ENV",
    "ROUTES",
    "Route",
    "agent_env",
    "codex_base_url",
    "split_path",
    "upstream_target",
    "upstreams",
]
