"""A scripted, OpenAI-compatible chat-completions server for demos and tests (stdlib only).

`POST /v1/chat/completions` answers like the OpenAI API, but its "model" follows a fixed script
driven by the conversation it is sent, so every run is deterministic:

1. no tool has been called yet: ask for `list_files` on the working directory;
2. the file list came back: pick the file that best matches the task and ask, in one turn, for
   `read_file` and `word_count` on it (two parallel tool calls);
3. both results came back: answer in prose and stop (`finish_reason: "stop"`).

A request without `tools` is answered in prose at once. The model `fake-truncating` (any model
whose name starts with it), or a `max_tokens` smaller than the answer, cuts the final answer short
with `finish_reason: "length"`. Token counts are estimated from text length (about four
characters a token), so `usage` is the same for the same conversation. Ids are derived from the
conversation too. Malformed requests get a 400 with an OpenAI-style error body.

`POST /v1/responses` (the OpenAI Responses API, which the OpenAI Agents SDK uses by default; not
streamed) follows the same script: its `input` items (messages, `function_call`,
`function_call_output`) and `instructions` are read as the chat conversation they stand for, and
the answer comes back as `message` and `function_call` output items. A cut-off answer has
`status: "incomplete"` and `incomplete_details.reason: "max_output_tokens"`. `server.billed()`
sums the tokens billed over both APIs.

    python examples/fake_model_server.py --port 8089      # serves until Ctrl-C

or, in-process:

    server, base_url = start_in_thread()                  # base_url ends in /v1
    ...
    server.shutdown()
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import re
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TRUNCATING_MODEL = "fake-truncating"
"""Models whose name starts with this stop their final answer early, with `finish_reason: "length"`."""

TRUNCATED_ANSWER_TOKENS = 16
"""How many tokens a truncating model's final answer gets."""


class RequestError(Exception):
    """A request the server refuses with 400 and an OpenAI-style error body."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.param = param


def count_tokens(text: str) -> int:
    """A rough token count: about four characters a token, at least one for any text."""
    return math.ceil(len(text) / 4) if text else 0


def prompt_tokens(messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None) -> int:
    """Tokens of the prompt: each message's text and tool calls, a small overhead per message,
    and the tool definitions."""
    total = 3
    for message in messages:
        content = message.get("content")
        text = content if isinstance(content, str) else json.dumps(content) if content else ""
        total += 4 + count_tokens(text) + count_tokens(json.dumps(message.get("tool_calls") or ""))
    if tools:
        total += count_tokens(json.dumps(tools))
    return total


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def _tool_call(conversation_id: str, index: int, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": f"call_{_digest(conversation_id, index, name)[:24]}",
        "type": "function",
        "function": {"name": name, "arguments": json.dumps(arguments)},
    }


def _tool_results(messages: list[dict[str, Any]]) -> dict[str, str]:
    """The latest result of each tool called in the conversation, by tool name."""
    names: dict[str, str] = {}
    results: dict[str, str] = {}
    for message in messages:
        for call in message.get("tool_calls") or ():
            names[call.get("id", "")] = call.get("function", {}).get("name", "")
        if message.get("role") == "tool":
            name = names.get(message.get("tool_call_id", ""), "")
            content = message.get("content")
            results[name] = content if isinstance(content, str) else json.dumps(content)
    return results


def _pick_file(names: list[str], task: str) -> str:
    """The file whose name shares most words with the task (ties: the first in sorted order)."""
    words = set(re.findall(r"[a-z0-9]+", task.lower()))

    def score(name: str) -> int:
        return len(set(re.findall(r"[a-z0-9]+", name.lower().rsplit(".", 1)[0])) & words)

    return max(sorted(names), key=score)


def _requested_path(messages: list[dict[str, Any]]) -> str:
    """The `path` argument of the last `word_count` call the model asked for."""
    path = "?"
    for message in messages:
        for call in message.get("tool_calls") or ():
            function = call.get("function", {})
            if function.get("name") == "word_count":
                try:
                    path = str(json.loads(function.get("arguments") or "{}").get("path", "?"))
                except (ValueError, AttributeError):
                    path = "?"
    return path


def _first_sentence(source: str) -> str:
    """The first line of a text worth quoting: a docstring's first line, else the first non-blank."""
    for line in source.splitlines():
        stripped = line.strip().strip("\"'#").strip()
        if stripped:
            return stripped
    return "(an empty file)"


def scripted_reply(
    messages: list[dict[str, Any]], tools: list[dict[str, Any]] | None, conversation_id: str
) -> tuple[str | None, list[dict[str, Any]]]:
    """The assistant's next turn: (text, tool calls). Exactly one of them is non-empty."""
    task = (
        next((m.get("content") for m in reversed(messages) if m.get("role") == "user"), None) or "(no task)"
    )
    offered = {t.get("function", {}).get("name") for t in tools or ()}
    results = _tool_results(messages)

    if "list_files" in offered and "list_files" not in results:
        return None, [_tool_call(conversation_id, 0, "list_files", {"directory": "."})]

    if {"read_file", "word_count"} <= offered and "list_files" in results and "read_file" not in results:
        try:
            listing = json.loads(results["list_files"])
            names = [n for n in listing if isinstance(n, str)] if isinstance(listing, list) else []
        except ValueError:
            names = []
        if not names:
            return f"I could not list any files: {results['list_files'][:200]}", []
        chosen = _pick_file(names, task)
        return None, [
            _tool_call(conversation_id, 1, "read_file", {"path": chosen}),
            _tool_call(conversation_id, 2, "word_count", {"path": chosen}),
        ]

    if "read_file" in results and "word_count" in results:
        try:
            counts = json.loads(results["word_count"])
            size = f"{counts['lines']} lines and {counts['words']} words"
        except (ValueError, KeyError, TypeError):
            size = f"a size I could not read ({results['word_count'][:100]})"
        listed = results.get("list_files", "[]")
        try:
            file_count = len(json.loads(listed))
        except (ValueError, TypeError):
            file_count = 0
        chosen = _requested_path(messages)
        return (
            f"Of the {file_count} files in the directory, `{chosen}` best matches the task. "
            f'It has {size}, and it opens with: "{_first_sentence(results["read_file"])}"',
            [],
        )

    return f'I can only answer from what I know: you asked "{task[:200]}", and I have no tools to check.', []


def complete(body: Any) -> dict[str, Any]:
    """The chat-completion response object for a request body. Raises RequestError when invalid."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise RequestError("you must provide a model parameter", param="model")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
        raise RequestError("'messages' must be a non-empty array of message objects.", param="messages")
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise RequestError("'tools' must be an array.", param="tools")
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        raise RequestError("'max_tokens' must be a positive integer.", param="max_tokens")
    if model.startswith(TRUNCATING_MODEL):
        max_tokens = min(max_tokens or TRUNCATED_ANSWER_TOKENS, TRUNCATED_ANSWER_TOKENS)

    conversation_id = _digest(model, messages)
    text, calls = scripted_reply(messages, tools, conversation_id)
    message: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
    if calls:
        message["tool_calls"] = calls
        finish_reason = "tool_calls"
        completion_tokens = sum(
            count_tokens(c["function"]["name"] + c["function"]["arguments"]) for c in calls
        )
    else:
        finish_reason = "stop"
        completion_tokens = count_tokens(text or "")
        if max_tokens is not None and completion_tokens > max_tokens:
            message["content"] = (text or "")[: max_tokens * 4]
            completion_tokens, finish_reason = max_tokens, "length"

    prompt = prompt_tokens(messages, tools)
    return {
        "id": f"chatcmpl-{conversation_id[:29]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake0001",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish_reason}],
        "usage": {
            "prompt_tokens": prompt,
            "completion_tokens": completion_tokens,
            "total_tokens": prompt + completion_tokens,
        },
    }


def _text_of(content: Any) -> str:
    """The text of a Responses API content value: a string, or a list of text parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return json.dumps(content) if content else ""


def chat_request(body: Any) -> dict[str, Any]:
    """The chat-completions request a Responses API request stands for. Raises RequestError."""
    if not isinstance(body, dict):
        raise RequestError("The request body must be a JSON object.")
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    if not isinstance(items, list) or not items or not all(isinstance(i, dict) for i in items):
        raise RequestError("'input' must be a string or a non-empty array of input items.", param="input")
    messages: list[dict[str, Any]] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    for item in items:
        kind = item.get("type", "message")
        if kind == "function_call":
            call = {
                "id": item.get("call_id", ""),
                "type": "function",
                "function": {"name": item.get("name", ""), "arguments": item.get("arguments") or "{}"},
            }
            if messages and messages[-1]["role"] == "assistant" and messages[-1].get("tool_calls"):
                messages[-1]["tool_calls"].append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            messages.append(
                {"role": "tool", "tool_call_id": item.get("call_id", ""), "content": _text_of(output)}
            )
        elif kind == "message":
            role = "system" if item.get("role") == "developer" else item.get("role", "user")
            messages.append({"role": role, "content": _text_of(item.get("content"))})
    tools = body.get("tools")
    if tools is not None and not isinstance(tools, list):
        raise RequestError("'tools' must be an array.", param="tools")
    request: dict[str, Any] = {"model": body.get("model"), "messages": messages}
    if tools:
        request["tools"] = [
            {"type": "function", "function": {k: v for k, v in t.items() if k != "type"}}
            for t in tools
            if isinstance(t, dict) and t.get("type") == "function"
        ]
    if body.get("max_output_tokens") is not None:
        request["max_tokens"] = body["max_output_tokens"]
    return request


def respond(body: Any) -> dict[str, Any]:
    """The Responses API response object for a request body. Raises RequestError when invalid."""
    chat = complete(chat_request(body))
    choice = chat["choices"][0]
    message, usage = choice["message"], chat["usage"]
    response_id = "resp_" + chat["id"].removeprefix("chatcmpl-")
    output: list[dict[str, Any]] = []
    if message.get("content") is not None:
        output.append({
            "type": "message", "id": "msg_" + response_id[5:], "status": "completed", "role": "assistant",
            "content": [{"type": "output_text", "text": message["content"], "annotations": []}],
        })  # fmt: skip
    for call in message.get("tool_calls") or ():
        function = call["function"]
        output.append({
            "type": "function_call", "id": "fc_" + call["id"].removeprefix("call_"), "status": "completed",
            "call_id": call["id"], "name": function["name"], "arguments": function["arguments"],
        })  # fmt: skip
    cut = choice["finish_reason"] == "length"
    return {
        "id": response_id,
        "object": "response",
        "created_at": chat["created"],
        "model": chat["model"],
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
        "error": None,
        "instructions": body.get("instructions"),
        "max_output_tokens": body.get("max_output_tokens"),
        "output": output,
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": 1.0,
        "tool_choice": body.get("tool_choice", "auto"),
        "tools": body.get("tools") or [],
        "top_p": 1.0,
        "text": {"format": {"type": "text"}},
        "truncation": "disabled",
        "metadata": {},
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["total_tokens"],
        },
    }


def billed_usage(response: dict[str, Any]) -> tuple[int, int]:
    """(input, output) tokens a chat completion or a Responses API response billed."""
    usage = response.get("usage") or {}
    return (
        int(usage.get("prompt_tokens", usage.get("input_tokens", 0))),
        int(usage.get("completion_tokens", usage.get("output_tokens", 0))),
    )


def error_body(message: str, kind: str = "invalid_request_error", param: str | None = None) -> dict[str, Any]:
    """An error object shaped like the OpenAI API's."""
    return {"error": {"message": message, "type": kind, "param": param, "code": None}}


class FakeModelServer(ThreadingHTTPServer):
    """The HTTP server. `responses` keeps every completion it sent, in order (for tests)."""

    daemon_threads = True

    def __init__(self, address: tuple[str, int], verbose: bool = False) -> None:
        super().__init__(address, ChatCompletionsHandler)
        self.verbose = verbose
        self.responses: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def base_url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def record(self, response: dict[str, Any]) -> None:
        with self._lock:
            self.responses.append(response)

    def billed(self) -> dict[str, int]:
        """The tokens billed so far, over every completion and response sent."""
        with self._lock:
            usages = [billed_usage(r) for r in self.responses]
        return {"input_tokens": sum(u[0] for u in usages), "output_tokens": sum(u[1] for u in usages)}


class ChatCompletionsHandler(BaseHTTPRequestHandler):
    """Serves `POST /v1/chat/completions` and `POST /v1/responses`; anything else is a 404."""

    server: FakeModelServer
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        answer = {"/v1/chat/completions": complete, "/v1/responses": respond}.get(self.path.rstrip("/"))
        if answer is None:
            self._send(HTTPStatus.NOT_FOUND, error_body(f"Unknown path {self.path}", "not_found_error"))
            return
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length)
        try:
            body = json.loads(raw)
        except ValueError as exc:
            self._send(HTTPStatus.BAD_REQUEST, error_body(f"We could not parse the JSON body: {exc}"))
            return
        try:
            response = answer(body)
        except RequestError as exc:
            self._send(HTTPStatus.BAD_REQUEST, error_body(str(exc), param=exc.param))
            return
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            message = f"Invalid 'messages': {type(exc).__name__}: {exc}"
            self._send(HTTPStatus.BAD_REQUEST, error_body(message, param="messages"))
            return
        self.server.record(response)
        self._send(HTTPStatus.OK, response)

    def do_GET(self) -> None:
        self._send(HTTPStatus.NOT_FOUND, error_body(f"Unknown path {self.path}", "not_found_error"))

    def _send(self, status: HTTPStatus, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


def start_in_thread(port: int = 0, host: str = "127.0.0.1") -> tuple[FakeModelServer, str]:
    """Serve from a daemon thread; returns the server (call `shutdown()` when done) and its base
    URL, which ends in `/v1` like OpenAI's. Port 0 picks a free port."""
    server = FakeModelServer((host, port))
    thread = threading.Thread(target=server.serve_forever, name="fake-model-server", daemon=True)
    thread.start()
    return server, server.base_url


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--host", default="127.0.0.1", help="Address to bind (default 127.0.0.1).")
    parser.add_argument("--port", type=int, default=8089, help="Port to listen on; 0 picks a free one.")
    args = parser.parse_args(argv)
    server = FakeModelServer((args.host, args.port), verbose=True)
    print(f"Fake OpenAI-compatible server at {server.base_url} (Ctrl-C to stop)", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
