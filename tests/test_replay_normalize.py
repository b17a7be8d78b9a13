"""replay.normalize: volatile fields dropped by the documented rules, the diff of two requests."""

from __future__ import annotations

import gzip
import json

from agenttrace.replay.normalize import model_of, normalise, request_diff, request_key


def claude_request(workdir: str, date: str, session: str, question: str = "Create out.txt") -> bytes:
    """The shape of a Claude Code turn: system prompt with the working directory and date,
    metadata.user_id with a session id, cache_control markers on the newest message."""
    return json.dumps(
        {
            "model": "claude-opus-5-5",
            "max_tokens": 32000,
            "stream": True,
            "metadata": {"user_id": f"user_abc_account__session_{session}"},
            "system": [
                {"type": "text", "text": "You are Claude Code.", "cache_control": {"type": "ephemeral"}},
                {
                    "type": "text",
                    "text": f"<env>\nWorking directory: {workdir}\nToday's date is {date}.\n</env>",
                },
            ],
            "messages": [
                {
                    "role": "user",
                    "content": [{"type": "text", "text": question, "cache_control": {"type": "ephemeral"}}],
                }
            ],
            "tools": [{"name": "Bash", "input_schema": {"type": "object"}}],
        }
    ).encode()


def test_a_replay_in_another_dir_on_another_day_matches() -> None:
    path = "/v1/messages?beta=true"
    a = normalise(
        "anthropic", "POST", path, claude_request("/tmp/a/w", "2026-12-01", "1"), workdir="/tmp/a/w"
    )
    b = normalise(
        "anthropic", "post", path, claude_request("/tmp/b/w2", "2027-01-05", "2"), workdir="/tmp/b/w2"
    )
    assert a == b
    assert request_key(a) == request_key(b)
    text = json.dumps(a)
    assert "<cwd>" in text and "<date>" in text
    assert "cache_control" not in text and "metadata" not in text


def test_openai_volatile_fields_and_key_order() -> None:
    one = {"model": "m", "messages": [{"role": "user", "content": "hi"}], "user": "u1",
           "stream_options": {"include_usage": True}, "prompt_cache_key": "conv-1"}  # fmt: skip
    two = {
        "messages": [{"content": "hi", "role": "user"}],
        "model": "m",
        "user": "u2",
        "prompt_cache_key": "c2",
    }
    k1 = request_key(normalise("openai", "POST", "/chat/completions", json.dumps(one).encode()))
    k2 = request_key(normalise("openai", "POST", "/chat/completions", json.dumps(two).encode()))
    assert k1 == k2
    three = dict(two, temperature=0.5)
    assert request_key(normalise("openai", "POST", "/chat/completions", json.dumps(three).encode())) != k1


def test_gzip_body_and_non_json_body() -> None:
    body = json.dumps({"model": "m"}).encode()
    assert normalise("llm", "POST", "/x", gzip.compress(body), content_encoding="gzip")["body"] == {
        "model": "m"
    }
    assert model_of(gzip.compress(body), "gzip") == "m"
    raw = normalise("llm", "POST", "/x", b"\x00\x01binary")
    assert set(raw["body"]) == {"sha256", "size"}
    assert normalise("anthropic", "HEAD", "/", b"")["body"] is None


def test_request_diff_names_the_changed_message() -> None:
    old = normalise(
        "anthropic", "POST", "/v1/messages", claude_request("/w", "2026-12-01", "1", "Write out.txt")
    )
    new = normalise(
        "anthropic", "POST", "/v1/messages", claude_request("/w", "2026-12-01", "1", "Write in.txt")
    )
    diff = request_diff(old, new)
    assert diff == ['body.messages[0].content[0].text: "Write out.txt" -> "Write in.txt"']


def test_request_diff_long_strings_lists_and_missing_keys() -> None:
    prefix = "x" * 500
    old = {"body": {"system": prefix + " alpha tail", "messages": [1, 2], "temperature": 1}}
    new = {"body": {"system": prefix + " beta tail", "messages": [1, 2, 3]}}
    diff = request_diff(old, new)
    assert diff[0] == "body.messages[2]: <missing> -> 3"
    assert diff[1].startswith("body.system: …") and "alpha" in diff[1] and "beta" in diff[1]
    assert len(diff[1]) < 200
    assert diff[2] == "body.temperature: 1 -> <missing>"
    assert request_diff(None, new) == ["no recorded request is left to match: the recording ended here"]
