"""replay.proxy in record mode: the agent gets the upstream's bytes at the upstream's pace, each
exchange is recorded with its chunking, secrets stay out of the store, and an unreachable upstream
is the same connection error with or without the proxy. Real SDKs, real sockets."""

from __future__ import annotations

import http.client
import json
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest

from agenttrace.replay.exchanges import Exchange
from agenttrace.replay.proxy import REDACTED, LLMProxy, redact_path
from agenttrace.store.artifact_store import ArtifactStore
from agenttrace.store.layout import StoreLayout

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(REPO / "tests" / "agents"))
from fake_model_server import start_in_thread  # noqa: E402
from fake_servers import FakeAnthropicServer  # noqa: E402

API_KEY = "sk-test-SECRET-0123456789abcdef"
MESSAGES = [{"role": "user", "content": "Say hello"}]


class SSEUpstream(ThreadingHTTPServer):
    """OpenAI chat completions, streamed: one SSE event per chunk of a chunked answer, each sent on
    its own. `words` pieces of text; `hold`: the last event waits for it (the test proves the agent
    saw the first ones before the upstream sent the last)."""

    daemon_threads = True

    def __init__(self, words: int = 5, word: str = "hello ") -> None:
        super().__init__(("127.0.0.1", 0), _SSEHandler)
        self.words = words
        self.word = word
        self.hold: threading.Event | None = None
        self.sent: list[bytes] = []
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"

    def events(self, model: str) -> list[bytes]:
        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            body = {
                "id": "chatcmpl-1",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(body).encode() + b"\n\n"

        out = [chunk({"role": "assistant", "content": ""})]
        out += [chunk({"content": self.word}) for _ in range(self.words)]
        return [*out, chunk({}, "stop"), b"data: [DONE]\n\n"]


class _SSEHandler(BaseHTTPRequestHandler):
    server: SSEUpstream
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        events = self.server.events(body.get("model", "m"))
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        sent = b""
        for i, event in enumerate(events):
            if i == len(events) - 1 and self.server.hold is not None:
                assert self.server.hold.wait(30)
            self.wfile.write(b"%x\r\n%b\r\n" % (len(event), event))
            sent += event
        self.wfile.write(b"0\r\n\r\n")
        self.server.sent.append(sent)

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def artifacts(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(StoreLayout(tmp_path / "store"), 1 << 30)


@pytest.fixture
def fake_openai() -> Iterator[str]:
    server, base_url = start_in_thread()
    yield base_url
    server.shutdown()
    server.server_close()


def recording_proxy(artifacts: ArtifactStore, **upstreams: str) -> tuple[LLMProxy, list[Exchange]]:
    got: list[Exchange] = []
    return LLMProxy(upstreams=upstreams, artifacts=artifacts, on_exchange=got.append).start(), got


def stored(artifacts: ArtifactStore, sha256: str | None) -> bytes:
    assert sha256 is not None
    return artifacts.path_of(sha256).read_bytes()


def test_openai_chat_completion_is_recorded_byte_for_byte(artifacts: ArtifactStore, fake_openai: str) -> None:
    proxy, got = recording_proxy(artifacts, openai=fake_openai)
    direct = openai.OpenAI(base_url=fake_openai, api_key=API_KEY, max_retries=0)
    via = openai.OpenAI(base_url=proxy.base_url("openai"), api_key=API_KEY, max_retries=0)
    try:
        want = direct.chat.completions.with_raw_response.create(model="fake", messages=MESSAGES)
        seen = via.chat.completions.with_raw_response.create(model="fake", messages=MESSAGES)
        answer = via.chat.completions.create(model="fake", messages=MESSAGES)
    finally:
        proxy.stop()
    assert seen.http_response.content == want.http_response.content
    assert seen.http_response.status_code == 200
    assert answer.choices[0].message.content == want.parse().choices[0].message.content
    assert [e.seq for e in got] == [1, 2]
    first = got[0]
    assert (first.route, first.method, first.path, first.status, first.mode) == (
        "openai", "POST", "/chat/completions", 200, "record",
    )  # fmt: skip
    assert first.model == "fake" and first.error is None
    assert stored(artifacts, first.response_sha256) == want.http_response.content
    assert json.loads(stored(artifacts, first.request_sha256))["messages"] == MESSAGES
    assert sum(size for size, _ in first.chunks) == first.response_size == len(want.http_response.content)
    assert dict((k.lower(), v) for k, v in first.request_headers)["authorization"] == REDACTED
    assert got[0].key == got[1].key  # the same request twice


def test_a_stream_reaches_the_agent_as_it_comes(artifacts: ArtifactStore) -> None:
    upstream = SSEUpstream(words=5)
    upstream.hold = threading.Event()
    proxy, got = recording_proxy(artifacts, openai=upstream.base_url)
    client = openai.OpenAI(base_url=proxy.base_url("openai"), api_key=API_KEY, max_retries=0)
    try:
        stream = client.chat.completions.create(model="m", messages=MESSAGES, stream=True)
        pieces = []
        for event in stream:
            pieces.append(event.choices[0].delta.content if event.choices else None)
            if len(pieces) == 6:  # every word came through while the upstream still holds its end
                upstream.hold.set()
        assert "".join(p or "" for p in pieces) == "hello " * 5
        # the raw bytes, through the proxy, are the upstream's, with its chunking
        conn = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
        conn.request("POST", "/openai/chat/completions", body=json.dumps({"model": "m", "stream": True}))
        response = conn.getresponse()
        assert response.getheader("Transfer-Encoding") == "chunked"
        raw = response.read()
        conn.close()
    finally:
        proxy.stop()
        upstream.shutdown()
        upstream.server_close()
    assert raw == upstream.sent[-1]
    recorded = got[-1]
    assert stored(artifacts, recorded.response_sha256) == raw
    assert len(recorded.chunks) > 1
    assert sum(size for size, _ in recorded.chunks) == len(raw)
    times = [ms for _, ms in recorded.chunks]
    assert times == sorted(times)
    assert dict((k.lower(), v) for k, v in recorded.response_headers)["transfer-encoding"] == "chunked"


def test_anthropic_sdk_stream_through_the_proxy(artifacts: ArtifactStore) -> None:
    with FakeAnthropicServer("happy") as upstream:
        proxy, got = recording_proxy(artifacts, anthropic=upstream.url)
        kwargs: dict[str, Any] = dict(
            model="claude-fake",
            max_tokens=100,
            messages=[{"role": "user", "content": "hi"}],
            tools=[{"name": "Bash", "input_schema": {"type": "object"}}],
        )
        try:
            direct = anthropic.Anthropic(base_url=upstream.url, api_key=API_KEY, max_retries=0)
            via = anthropic.Anthropic(base_url=proxy.base_url("anthropic"), api_key=API_KEY, max_retries=0)
            with direct.messages.stream(**kwargs) as s:
                want = s.get_final_message()
            with via.messages.stream(**kwargs) as s:
                seen = s.get_final_message()
        finally:
            proxy.stop()
    assert seen.model_dump() == want.model_dump()
    assert seen.content[1].type == "tool_use"
    (exchange,) = got
    assert exchange.route == "anthropic" and exchange.path.startswith("/v1/messages")
    headers = dict((k.lower(), v) for k, v in exchange.request_headers)
    assert headers["x-api-key"] == REDACTED
    assert b"event: message_stop" in stored(artifacts, exchange.response_sha256)


def test_no_api_key_or_bearer_token_in_the_store(artifacts: ArtifactStore, fake_openai: str) -> None:
    proxy, got = recording_proxy(artifacts, openai=fake_openai, gemini=fake_openai)
    try:
        openai.OpenAI(
            base_url=proxy.base_url("openai"), api_key=API_KEY, max_retries=0
        ).chat.completions.create(model="fake", messages=MESSAGES)
        conn = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
        conn.request(
            "POST",
            f"/gemini/models/g:generateContent?alt=sse&key={API_KEY}",
            body=b"{}",
            headers={"x-goog-api-key": API_KEY, "Cookie": f"s={API_KEY}", "X-Session-Token": API_KEY},
        )
        conn.getresponse().read()
        conn.close()
    finally:
        proxy.stop()
    assert got[1].path == f"/models/g:generateContent?alt=sse&key={REDACTED}"
    spans = json.dumps([e.to_json() for e in got])
    assert API_KEY not in spans
    store = artifacts.layout.root
    found = subprocess.run(
        ["grep", "-r", "-l", "SECRET-0123456789", str(store)], capture_output=True, text=True
    )
    assert found.returncode == 1, found.stdout  # 1: no match
    assert any(store.rglob("*")), "the store holds the recorded bodies"


def test_redact_path_keeps_other_parameters() -> None:
    assert (
        redact_path("/x?alt=sse&key=abc&access_token=t")
        == f"/x?alt=sse&key={REDACTED}&access_token={REDACTED}"
    )
    assert redact_path("/x") == "/x"


def unused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_unreachable_upstream_is_a_connection_error_as_without_the_proxy(artifacts: ArtifactStore) -> None:
    dead = f"http://127.0.0.1:{unused_port()}/v1"
    proxy, got = recording_proxy(artifacts, openai=dead)
    errors = []
    try:
        for base in (dead, proxy.base_url("openai")):
            client = openai.OpenAI(base_url=base, api_key=API_KEY, max_retries=0)
            with pytest.raises(openai.APIError) as caught:
                client.chat.completions.create(model="m", messages=MESSAGES)
            errors.append(type(caught.value))
    finally:
        proxy.stop()
    assert errors == [openai.APIConnectionError, openai.APIConnectionError]
    (exchange,) = got
    assert exchange.status is None and exchange.response_sha256 is None
    assert exchange.error is not None and exchange.error.startswith(
        "upstream unreachable: ConnectionRefusedError"
    )


def test_unknown_route_and_an_on_exchange_that_raises(artifacts: ArtifactStore, fake_openai: str) -> None:
    def boom(exchange: Exchange) -> None:
        raise RuntimeError("the callback failed")

    proxy = LLMProxy(upstreams={"openai": fake_openai}, artifacts=artifacts, on_exchange=boom).start()
    try:
        conn = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]))
        conn.request("GET", "/elsewhere/x")
        assert conn.getresponse().status == 404
        conn.close()
        client = openai.OpenAI(base_url=proxy.base_url("openai"), api_key=API_KEY, max_retries=0)
        for _ in range(2):  # a failing callback breaks nothing
            assert client.chat.completions.create(model="m", messages=MESSAGES).choices
    finally:
        proxy.stop()
    assert [e.status for e in proxy.exchanges] == [200, 200]


def test_head_request_is_forwarded() -> None:
    with FakeAnthropicServer("happy") as upstream:
        proxy = LLMProxy(upstreams={"anthropic": upstream.url}).start()
        try:
            conn = http.client.HTTPConnection("127.0.0.1", int(proxy.url.rsplit(":", 1)[1]), timeout=10)
            conn.request("HEAD", "/anthropic")
            response = conn.getresponse()
            assert response.status == 200 and response.read() == b""
            conn.request("HEAD", "/anthropic/")  # the same connection, kept alive
            assert conn.getresponse().status == 200
            conn.close()
        finally:
            proxy.stop()
    deadline = time.monotonic() + 5
    while len(proxy.exchanges) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [(e.method, e.status, e.response_size) for e in proxy.exchanges] == [("HEAD", 200, 0)] * 2


def test_a_store_that_fails_does_not_reach_the_agent(tmp_path: Path, fake_openai: str) -> None:
    blocked = tmp_path / "not-a-folder"
    blocked.write_text("a file where the store should be")
    artifacts = ArtifactStore(StoreLayout(blocked), 1 << 30)
    proxy, got = recording_proxy(artifacts, openai=fake_openai)
    try:
        client = openai.OpenAI(base_url=proxy.base_url("openai"), api_key=API_KEY, max_retries=0)
        assert client.chat.completions.create(model="fake", messages=MESSAGES).choices[0].message.content
    finally:
        proxy.stop()
    (exchange,) = got
    assert exchange.status == 200
    assert exchange.error is not None and "bodies not stored" in exchange.error
    assert exchange.response_sha256 is None and exchange.response_size > 0
