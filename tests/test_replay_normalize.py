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


def test_claude_codes_project_folder_slug_of_the_working_directory_is_normalised() -> None:
    """Claude Code names its memory folder after the working directory, every character but ASCII
    letters and digits made `-`: `~/.claude/projects/-tmp-a-w_1/memory/` for `/tmp/a/w_1`."""

    def request(workdir: str, slug: str) -> bytes:
        text = f"Working directory: {workdir}\nMemory: `/home/u/.claude/projects/{slug}/memory/`."
        return json.dumps({"model": "m", "system": [{"type": "text", "text": text}]}).encode()

    a = normalise(
        "anthropic", "POST", "/v1/messages", request("/tmp/a/w_1", "-tmp-a-w-1"), workdir="/tmp/a/w_1"
    )
    b = normalise(
        "anthropic", "POST", "/v1/messages", request("/tmp/b/x.2", "-tmp-b-x-2"), workdir="/tmp/b/x.2"
    )
    assert a == b
    assert "/home/u/.claude/projects/<cwd>/memory/" in json.dumps(a)
    other = normalise(
        "anthropic", "POST", "/v1/messages", request("/tmp/a/w_1", "-tmp-c"), workdir="/tmp/a/w_1"
    )
    assert other != a  # another project's folder is not this run's


def codex_turn(session: str, message_ids: tuple[str, str], chunk: str, wall: str) -> bytes:
    """The shape of Codex's second `POST /responses` of a turn: per-session ids in client_metadata
    and prompt_cache_key, made-up message ids on the input items, a tool result with Codex's
    output header."""
    return json.dumps(
        {
            "model": "gpt-5.5",
            "prompt_cache_key": session,
            "client_metadata": {"session_id": session, "turn_id": session + "-t", "x-codex-window-id": "w"},
            "input": [
                {"type": "message", "role": "user", "id": message_ids[0], "content": "Create out.txt"},
                {"type": "function_call", "id": "fc_1", "call_id": "call_1", "name": "exec_command"},
                {
                    "type": "function_call_output",
                    "id": message_ids[1],
                    "call_id": "call_1",
                    "output": f"Chunk ID: {chunk}\nWall time: {wall} seconds\nProcess exited with code 0\n",
                },
            ],
        }
    ).encode()


def test_codex_session_ids_message_ids_and_output_header_are_volatile() -> None:
    a = normalise("openai", "POST", "/responses", codex_turn("s-1", ("msg_a", "msg_b"), "2565d6", "0.0000"))
    b = normalise("openai", "POST", "/responses", codex_turn("s-2", ("msg_c", "msg_d"), "b4b40e", "1.25"))
    assert a == b
    text = json.dumps(a)
    assert "client_metadata" not in text and "msg_" not in text
    assert "Chunk ID: <id>\\nWall time: <elapsed>\\nProcess exited with code 0" in text
    assert '"call_id": "call_1"' in text  # the model's own call ids are kept
    c = normalise("openai", "POST", "/responses", codex_turn("s-1", ("msg_a", "msg_b"), "2565d6", "0.0000"))
    assert c == a
    failed = codex_turn("s-1", ("msg_a", "msg_b"), "2565d6", "0.0000").replace(b"code 0", b"code 2")
    assert normalise("openai", "POST", "/responses", failed) != a  # the exit code is not volatile
    costs = [json.dumps({"turn_ids": [t]}).encode() for t in ("8f0b4ef9", "67c37892")]
    path = "/analytics/codex/turn-costs"
    assert normalise("openai", "POST", path, costs[0]) == normalise("openai", "POST", path, costs[1])


def gemini_turn(workdir: str, project: str, call_id: str, pgid: int) -> bytes:
    """The shape of Gemini CLI's second turn: a session context naming its project's temporary
    folder, the shell call it named itself, and the tool's result with its process group."""
    context = f"The project's temporary directory is: /home/u/.gemini/tmp/{project}\n  - {workdir}"
    output = f"<untrusted_context>\nOutput: (empty)\nProcess Group PGID: {pgid}\n</untrusted_context>"
    return json.dumps(
        {
            "contents": [
                {"role": "user", "parts": [{"text": context}]},
                {"role": "model", "parts": [{"functionCall": {"id": call_id, "name": "run_shell_command"}}]},
                {
                    "role": "user",
                    "parts": [
                        {
                            "functionResponse": {
                                "id": call_id,
                                "name": "run_shell_command",
                                "response": {"output": output},
                            }
                        }
                    ],
                },
            ]
        }
    ).encode()


def test_gemini_clis_project_id_call_ids_and_process_group_are_volatile() -> None:
    path = "/v1beta/models/gemini-3.8-flash:streamGenerateContent?alt=sse"
    a = normalise(
        "gemini",
        "POST",
        path,
        gemini_turn("/tmp/a/My Work", "my-work", "run_1796_0", 29283),
        workdir="/tmp/a/My Work",
    )
    b = normalise(
        "gemini",
        "POST",
        path,
        gemini_turn("/tmp/b/My_Work", "my-work-1", "run_1797_0", 29385),
        workdir="/tmp/b/My_Work",
    )
    assert a == b
    text = json.dumps(a)
    assert "/.gemini/tmp/<project>" in text and "Process Group PGID: <pid>" in text and "run_17" not in text
    other = gemini_turn("/tmp/a/My Work", "my-workshop", "run_1796_0", 29283)  # not this directory's id
    assert normalise("gemini", "POST", path, other, workdir="/tmp/a/My Work") != a
