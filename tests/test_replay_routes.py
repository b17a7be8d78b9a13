"""replay.routes: upstreams from the supervisor's env, the agent's env, path splitting."""

from __future__ import annotations

import pytest

from agenttrace.errors import ConfigError
from agenttrace.replay.routes import agent_env, codex_base_url, split_path, upstream_target, upstreams


class FakeProxy:
    def base_url(self, route: str) -> str:
        return f"http://127.0.0.1:9/{route}"


def test_upstreams_defaults_and_overrides() -> None:
    assert upstreams({}) == {
        "openai": "https://api.openai.com/v1",
        "anthropic": "https://api.anthropic.com",
        "gemini": "https://generativelanguage.googleapis.com",
    }
    got = upstreams(
        {"OPENAI_BASE_URL": "http://127.0.0.1:8089/v1/", "AGENTTRACE_LLM_UPSTREAM": "http://h:1/x"}
    )
    assert got["openai"] == "http://127.0.0.1:8089/v1"
    assert got["llm"] == "http://h:1/x"


def test_upstream_not_a_url_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="ANTHROPIC_BASE_URL"):
        upstreams({"ANTHROPIC_BASE_URL": "localhost:8080"})


def test_agent_env_points_every_route_at_the_proxy() -> None:
    env = agent_env(FakeProxy())
    assert env == {
        "OPENAI_BASE_URL": "http://127.0.0.1:9/openai",
        "ANTHROPIC_BASE_URL": "http://127.0.0.1:9/anthropic",
        "GOOGLE_GEMINI_BASE_URL": "http://127.0.0.1:9/gemini",
        "AGENTTRACE_LLM_PROXY": "http://127.0.0.1:9/llm",
    }
    assert agent_env(FakeProxy(), {"openai": "x"}) == {"OPENAI_BASE_URL": "http://127.0.0.1:9/openai"}
    assert codex_base_url(FakeProxy()) == "http://127.0.0.1:9/openai"


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/openai/chat/completions", ("openai", "/chat/completions")),
        ("/anthropic/v1/messages?beta=true", ("anthropic", "/v1/messages?beta=true")),
        ("/anthropic", ("anthropic", "/")),
        ("/anthropic/", ("anthropic", "/")),
        ("/nope/v1/x", None),
        ("/", None),
    ],
)
def test_split_path(path: str, expected: tuple[str, str] | None) -> None:
    assert split_path(path) == expected


def test_upstream_target_keeps_the_base_path_and_query() -> None:
    assert upstream_target("http://127.0.0.1:8089/v1", "/chat/completions?a=1") == (
        "http", "127.0.0.1", 8089, "/v1/chat/completions?a=1",
    )  # fmt: skip
    assert upstream_target("https://api.anthropic.com", "/v1/messages") == (
        "https", "api.anthropic.com", None, "/v1/messages",
    )  # fmt: skip
    assert upstream_target("https://api.anthropic.com", "/")[3] == "/"
