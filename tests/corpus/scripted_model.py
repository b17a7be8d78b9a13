"""The model of a corpus case: a loopback server that gives the answers a case's `model.json` lists,
in order, in the shape of the API asked (stdlib only).

    {"answers": [
        {"tool_calls": [{"name": "run_tests", "arguments": {"path": "tests"}}]},
        {"http_status": 429, "error": "Rate limit reached for gpt-4o-mini"},
        {"text": "All 12 tests pass.", "finish_reason": "stop"}
    ]}

An answer is text, tool calls or both; `finish_reason` defaults to `tool_calls` when there are
tool calls, else `stop` (`length` cuts an answer short: a Responses API answer is then
`incomplete`, an Anthropic one `max_tokens`). `http_status` answers that HTTP error instead, with
`error` as its message. Each request takes the next answer, whichever API it came to:
`POST /v1/chat/completions` (OpenAI chat), `POST /v1/responses` (OpenAI Responses, not streamed)
and `POST /v1/messages` (Anthropic Messages, not streamed). Past the last answer the server
answers 500, so an agent that asks for more than its case planned shows in the run. Usage is four
characters a token, of the request body for input and of the answer for output; `billed()` sums it.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


def tokens(text: str) -> int:
    return max(1, len(text) // 4)


class ScriptedModel(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, answers: list[dict[str, Any]]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers = list(answers)
        self.served = 0
        self.usage: list[tuple[int, int]] = []
        self.lock = threading.Lock()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def start(self) -> ScriptedModel:
        threading.Thread(target=self.serve_forever, name="scripted-model", daemon=True).start()
        return self

    def next_answer(self) -> tuple[int, dict[str, Any] | None]:
        with self.lock:
            index = self.served
            self.served += 1
        return index, self.answers[index] if index < len(self.answers) else None

    def billed(self) -> dict[str, int]:
        with self.lock:
            return {
                "input_tokens": sum(u[0] for u in self.usage),
                "output_tokens": sum(u[1] for u in self.usage),
            }


def _chat(answer: dict[str, Any], index: int, model: str, usage: tuple[int, int]) -> dict[str, Any]:
    calls = [
        {"id": f"call_{index}_{i}", "type": "function",
         "function": {"name": c["name"], "arguments": json.dumps(c.get("arguments", {}))}}
        for i, c in enumerate(answer.get("tool_calls", []))
    ]  # fmt: skip
    message: dict[str, Any] = {"role": "assistant", "content": answer.get("text"), "refusal": None}
    if calls:
        message["tool_calls"] = calls
    return {
        "id": f"chatcmpl-corpus{index}", "object": "chat.completion", "created": 1767225600, "model": model,
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(answer)}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }  # fmt: skip


def _responses(answer: dict[str, Any], index: int, model: str, usage: tuple[int, int]) -> dict[str, Any]:
    output: list[dict[str, Any]] = []
    if answer.get("text") is not None:
        text = [{"type": "output_text", "text": answer["text"], "annotations": []}]
        output.append({"type": "message", "id": f"msg_{index}", "status": "completed", "role": "assistant",
                       "content": text})  # fmt: skip
    for i, c in enumerate(answer.get("tool_calls", [])):
        output.append({"type": "function_call", "id": f"fc_{index}_{i}", "status": "completed",
                       "call_id": f"call_{index}_{i}", "name": c["name"],
                       "arguments": json.dumps(c.get("arguments", {}))})  # fmt: skip
    cut = _finish(answer) == "length"
    return {
        "id": f"resp_corpus{index}", "object": "response", "created_at": 1767225600, "model": model,
        "status": "incomplete" if cut else "completed",
        "incomplete_details": {"reason": "max_output_tokens"} if cut else None, "error": None,
        "output": output, "parallel_tool_calls": True, "tool_choice": "auto", "tools": [],
        "text": {"format": {"type": "text"}}, "truncation": "disabled", "metadata": {},
        "usage": {"input_tokens": usage[0], "input_tokens_details": {"cached_tokens": 0},
                  "output_tokens": usage[1], "output_tokens_details": {"reasoning_tokens": 0},
                  "total_tokens": sum(usage)},
    }  # fmt: skip


def _messages(answer: dict[str, Any], index: int, model: str, usage: tuple[int, int]) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if answer.get("text") is not None:
        content.append({"type": "text", "text": answer["text"]})
    for i, c in enumerate(answer.get("tool_calls", [])):
        content.append(
            {
                "type": "tool_use",
                "id": f"toolu_{index}_{i}",
                "name": c["name"],
                "input": c.get("arguments", {}),
            }
        )
    stop = {"tool_calls": "tool_use", "stop": "end_turn", "length": "max_tokens"}.get(
        _finish(answer), _finish(answer)
    )
    return {
        "id": f"msg_corpus{index}", "type": "message", "role": "assistant", "model": model,
        "content": content, "stop_reason": stop, "stop_sequence": None,
        "usage": {"input_tokens": usage[0], "output_tokens": usage[1]},
    }  # fmt: skip


def _finish(answer: dict[str, Any]) -> str:
    return answer.get("finish_reason") or ("tool_calls" if answer.get("tool_calls") else "stop")


SHAPES = {"/v1/chat/completions": _chat, "/v1/responses": _responses, "/v1/messages": _messages}


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedModel
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        shape = SHAPES.get(self.path.split("?")[0].rstrip("/"))
        if shape is None:
            return self._send(404, {"error": {"message": f"unknown path {self.path}", "type": "not_found"}})
        try:
            model = str(json.loads(raw).get("model") or "scripted")
        except (ValueError, AttributeError):
            return self._send(
                400, {"error": {"message": "the body is not a JSON object", "type": "invalid_request_error"}}
            )
        index, answer = self.server.next_answer()
        if answer is None:
            return self._send(
                500, {"error": {"message": "the case's script has no answer left", "type": "server_error"}}
            )
        if answer.get("http_status"):
            kind = "rate_limit_error" if answer["http_status"] == 429 else "api_error"
            return self._send(
                answer["http_status"],
                {"type": "error", "error": {"message": answer.get("error", ""), "type": kind}},
            )
        said = json.dumps({k: answer.get(k) for k in ("text", "tool_calls")})
        usage = (tokens(raw.decode("utf-8", "replace")), tokens(said))
        with self.server.lock:
            self.server.usage.append(usage)
        self._send(200, shape(answer, index, model, usage))

    def do_HEAD(self) -> None:
        self._send(200, {})

    def _send(self, status: int, payload: dict[str, Any]) -> None:
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        if status == 429:
            self.send_header("Retry-After", "0")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:
        pass
