"""replay.proxy in replay mode: recorded answers served byte for byte with their chunk boundaries,
no upstream contacted; the first request that matches nothing is a divergence with a diff, served
as an error the SDKs surface (and do not retry), or forwarded upstream with `then_live`;
`from_step`. Real SDKs and sockets; the upstream is stopped before the replay."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path
from typing import Any

import anthropic
import openai
import pytest
from test_replay_proxy import API_KEY, MESSAGES, SSEUpstream, unused_port

from agenttrace.replay.exchanges import Exchange, Recording
from agenttrace.replay.proxy import DIVERGED_STATUS, LLMProxy

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "examples"))
sys.path.insert(0, str(REPO / "tests" / "agents"))
from fake_model_server import start_in_thread  # noqa: E402
from fake_servers import FakeAnthropicServer  # noqa: E402


def record(upstreams: dict[str, str], calls: Any) -> Recording:
    """Run `calls(base_url_of)` through a recording proxy; the recording, in memory."""
    proxy = LLMProxy(upstreams=upstreams).start()
    try:
        calls(proxy.base_url)
    finally:
        proxy.stop()
    return Recording("recorded", sorted(proxy.exchanges, key=lambda e: e.seq))


def replaying(recording: Recording, **kwargs: Any) -> LLMProxy:
    return LLMProxy(recording=recording, **kwargs).start()


def raw_chunks(port: int, path: str, body: bytes) -> tuple[bytes, list[int]]:
    """POST and read the answer off the socket: its body and the sizes of its chunks as framed."""
    with socket.create_connection(("127.0.0.1", port)) as sock:
        head = f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        sock.sendall(head.encode() + body)
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    _, _, rest = data.partition(b"\r\n\r\n")
    sizes, out = [], b""
    while True:
        line, _, rest = rest.partition(b"\r\n")
        size = int(line, 16)
        if size == 0:
            return out, sizes
        sizes.append(size)
        out += rest[:size]
        rest = rest[size + 2 :]


def test_replay_serves_the_recorded_bytes_without_the_upstream() -> None:
    server, base_url = start_in_thread()
    asks = [MESSAGES, [{"role": "user", "content": "Say goodbye"}]]
    seen: list[bytes] = []

    def calls(base: Any) -> None:
        client = openai.OpenAI(base_url=base("openai"), api_key=API_KEY, max_retries=0)
        for messages in asks:
            seen.append(
                client.chat.completions.with_raw_response.create(model="m", messages=messages).content
            )

    recording = record({"openai": base_url}, calls)
    server.shutdown()
    server.server_close()
    proxy = replaying(recording)
    try:
        client = openai.OpenAI(base_url=proxy.base_url("openai"), api_key="sk-other", max_retries=0)
        replayed = [
            client.chat.completions.with_raw_response.create(model="m", messages=m).content for m in asks
        ]
    finally:
        proxy.stop()
    assert replayed == seen
    assert proxy.divergence is None
    assert sorted((e.mode, e.replayed_from, e.status) for e in proxy.exchanges) == [
        ("replay", 1, 200), ("replay", 2, 200),
    ]  # fmt: skip


@pytest.mark.parametrize("speed", [None, 100.0])
def test_a_stream_is_replayed_with_its_chunk_boundaries(speed: float | None) -> None:
    upstream = SSEUpstream(words=20)
    body = json.dumps({"model": "m", "stream": True, "messages": MESSAGES}).encode()

    def calls(base: Any) -> None:
        port = int(base("openai").rsplit(":", 1)[1].split("/")[0])
        calls.first = raw_chunks(port, "/openai/chat/completions", body)  # type: ignore[attr-defined]

    recording = record({"openai": upstream.base_url}, calls)
    upstream.shutdown()
    upstream.server_close()
    recorded_body, _ = calls.first  # type: ignore[attr-defined]
    (exchange,) = recording.exchanges
    proxy = replaying(recording, speed=speed)
    try:
        port = int(proxy.url.rsplit(":", 1)[1])
        replayed_body, sizes = raw_chunks(port, "/openai/chat/completions", body)
        stream = openai.OpenAI(base_url=proxy.base_url("openai"), api_key="k", max_retries=0)
        with pytest.raises(openai.APIStatusError):  # the recording had one such request: the second diverges
            list(stream.chat.completions.create(model="m", messages=MESSAGES, stream=True))
    finally:
        proxy.stop()
    assert replayed_body == recorded_body == upstream.sent[-1]
    assert sizes == [size for size, _ in exchange.chunks]
    assert len(sizes) > 1


def test_anthropic_stream_replayed_through_the_sdk() -> None:
    kwargs: dict[str, Any] = dict(
        model="claude-fake", max_tokens=100, messages=[{"role": "user", "content": "hi"}],
        tools=[{"name": "Bash", "input_schema": {"type": "object"}}],
    )  # fmt: skip
    with FakeAnthropicServer("happy") as upstream:
        finals = []

        def calls(base: Any) -> None:
            client = anthropic.Anthropic(base_url=base("anthropic"), api_key=API_KEY, max_retries=0)
            with client.messages.stream(**kwargs) as s:
                finals.append(s.get_final_message())

        recording = record({"anthropic": upstream.url}, calls)
    proxy = replaying(recording)
    try:
        client = anthropic.Anthropic(base_url=proxy.base_url("anthropic"), api_key="k", max_retries=0)
        with client.messages.stream(**kwargs) as s:
            again = s.get_final_message()
    finally:
        proxy.stop()
    assert again.model_dump() == finals[0].model_dump()


def test_a_changed_prompt_diverges_with_a_diff_and_is_not_retried() -> None:
    server, base_url = start_in_thread()

    def calls(base: Any) -> None:
        client = openai.OpenAI(base_url=base("openai"), api_key=API_KEY, max_retries=0)
        client.chat.completions.create(model="m", messages=MESSAGES)
        client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Write out.txt"}])

    recording = record({"openai": base_url}, calls)
    server.shutdown()
    server.server_close()
    proxy = replaying(recording)
    try:
        client = openai.OpenAI(base_url=proxy.base_url("openai"), api_key="k", max_retries=2)
        client.chat.completions.create(model="m", messages=MESSAGES)
        with pytest.raises(openai.APIStatusError) as caught:
            client.chat.completions.create(model="m", messages=[{"role": "user", "content": "Write in.txt"}])
        with pytest.raises(openai.APIStatusError):  # and every request after it
            client.chat.completions.create(model="m", messages=MESSAGES)
    finally:
        proxy.stop()
    error = caught.value
    assert error.status_code == DIVERGED_STATUS
    assert error.response.headers["x-agenttrace-replay"] == "diverged"
    assert "replay diverged at request 2" in str(error)
    divergence = proxy.divergence
    assert divergence is not None
    assert (divergence.seq, divergence.step, divergence.route) == (2, 2, "openai")
    assert divergence.diff == ['body.messages[0].content: "Write out.txt" -> "Write in.txt"']
    assert divergence.expected is not None and divergence.expected.seq == 2
    body = json.loads(error.response.content)["error"]["divergence"]
    assert body["diff"] == divergence.diff and body["step"] == 2
    # not retried: three requests in all, the last two refused
    modes = sorted((e.seq, e.mode, e.status) for e in proxy.exchanges)
    assert modes == [(1, "replay", 200), (2, "diverged", 400), (3, "diverged", 400)]


def test_then_live_forwards_from_the_divergence_on() -> None:
    server, base_url = start_in_thread()

    def calls(base: Any) -> None:
        openai.OpenAI(base_url=base("openai"), api_key=API_KEY, max_retries=0).chat.completions.create(
            model="m", messages=MESSAGES
        )

    recording = record({"openai": base_url}, calls)
    proxy = replaying(recording, upstreams={"openai": base_url}, then_live=True)
    try:
        client = openai.OpenAI(base_url=proxy.base_url("openai"), api_key="k", max_retries=0)
        changed = [{"role": "user", "content": "Something else"}]
        live = client.chat.completions.create(model="m", messages=changed)
        after = client.chat.completions.create(model="m", messages=MESSAGES)  # live too, from here on
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()
    assert live.choices[0].message.content and after.choices
    assert proxy.divergence is not None and proxy.divergence.seq == 1
    assert sorted((e.seq, e.mode) for e in proxy.exchanges) == [(1, "live"), (2, "live")]


def test_from_step_serves_the_first_steps_then_goes_live() -> None:
    server, base_url = start_in_thread()
    asks = [MESSAGES, [{"role": "user", "content": "two"}], [{"role": "user", "content": "three"}]]

    def calls(base: Any) -> None:
        client = openai.OpenAI(base_url=base("openai"), api_key=API_KEY, max_retries=0)
        for messages in asks:
            client.chat.completions.create(model="m", messages=messages)

    recording = record({"openai": base_url}, calls)
    proxy = replaying(recording, upstreams={"openai": base_url}, from_step=2)
    try:
        client = openai.OpenAI(base_url=proxy.base_url("openai"), api_key="k", max_retries=0)
        for messages in asks:
            client.chat.completions.create(model="m", messages=messages)
    finally:
        proxy.stop()
        server.shutdown()
        server.server_close()
    assert proxy.divergence is None
    assert sorted((e.seq, e.mode) for e in proxy.exchanges) == [(1, "replay"), (2, "live"), (3, "live")]


def test_a_recorded_connection_failure_is_replayed_as_one() -> None:
    dead = f"http://127.0.0.1:{unused_port()}/v1"

    def calls(base: Any) -> None:
        with pytest.raises(openai.APIConnectionError):
            openai.OpenAI(base_url=base("openai"), api_key=API_KEY, max_retries=0).chat.completions.create(
                model="m", messages=MESSAGES
            )

    recording = record({"openai": dead}, calls)
    proxy = replaying(recording)
    try:
        with pytest.raises(openai.APIConnectionError):
            openai.OpenAI(
                base_url=proxy.base_url("openai"), api_key="k", max_retries=0
            ).chat.completions.create(model="m", messages=MESSAGES)
    finally:
        proxy.stop()
    assert [(e.mode, e.status) for e in proxy.exchanges] == [("replay", None)]


def test_past_the_end_of_the_recording() -> None:
    proxy = replaying(Recording("empty", []))
    try:
        with pytest.raises(openai.APIStatusError) as caught:
            openai.OpenAI(
                base_url=proxy.base_url("openai"), api_key="k", max_retries=0
            ).chat.completions.create(model="m", messages=MESSAGES)
    finally:
        proxy.stop()
    assert caught.value.status_code == DIVERGED_STATUS
    assert proxy.divergence is not None and proxy.divergence.step == 1
    assert proxy.divergence.diff == ["no recorded request is left to match: the recording ended here"]
    assert isinstance(proxy.exchanges[0], Exchange)
