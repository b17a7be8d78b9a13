"""Scripted fake model servers for the real CLI coding agents, run offline on 127.0.0.1 (stdlib only).

Three vendors' streaming APIs, each just deep enough for a scripted agent session:

- `FakeAnthropicServer`: the Anthropic Messages API (`POST /v1/messages?beta=true`, SSE when
  `stream` is true) for Claude Code, plus `HEAD /` and `/v1/messages/count_tokens`;
- `FakeOpenAIResponsesServer`: the OpenAI Responses API (`POST /v1/responses`, SSE) for Codex;
- `FakeGeminiServer`: the Gemini API (`:generateContent` for the model router and other JSON
  side questions, `:streamGenerateContent?alt=sse` for the agent's turns) for Gemini CLI.

The model follows a `Scenario`, driven by the conversation it is sent, so every run is the same:

1. no tool result in the conversation yet: ask for one shell tool call running `scenario.command`;
2. a tool result came back: give the final answer (`end_turn` / `completed` / `STOP`), or, for the
   `truncated` scenario, a final answer cut off (`max_tokens` / `max_output_tokens` / `MAX_TOKENS`).

A request that offers no shell tool is a side question (a title, a summary): it gets a short
plain answer. Every request is recorded (`server.requests`), with the reply kind and the usage the
fake model billed for it, so tests can compare token totals with what the agent recorded.
Token counts are about four characters a token of the request body and of the reply.

    with FakeAnthropicServer("happy") as server:   # serves from a thread; server.url
        ...
    server.requests                                 # [Exchange(...), ...]
    server.billed()                                 # {"input_tokens": ..., "output_tokens": ...}
"""

from __future__ import annotations

import gzip
import hashlib
import json
import math
import sys
import threading
import time
import zlib
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Scenario:
    """What the scripted model does in one session."""

    name: str
    command: str
    """The shell command of the one tool call the model asks for."""
    final_answer: str
    truncated: bool = False
    """The final answer is cut off: the vendor's max-tokens finish reason instead of a normal stop."""


SCENARIOS: dict[str, Scenario] = {
    s.name: s
    for s in (
        Scenario("happy", "echo hello > out.txt", "I wrote hello to out.txt. Done."),
        Scenario(
            "truncated",
            "echo hello > out.txt",
            "I wrote hello to out.txt, and the file now holds one line with the word",
            truncated=True,
        ),
        Scenario(
            "exit2",
            "echo hello > out.txt; exit 2",
            "Success: out.txt was written and the task is complete.",
        ),
        Scenario(
            "env",
            "echo hello > out.txt; env | sort > env.txt",
            "I wrote hello to out.txt, and the tool's environment to env.txt.",
        ),
    )
}

PROMPT = "Create a file named out.txt containing the word hello, using the shell."
"""The prompt the runner gives each CLI (the fake model does not read it)."""

SIDE_ANSWER = "Writing hello to out.txt"
"""The answer to a side question (a request that offers no shell tool)."""

SHELL_TOOLS = ("Bash", "exec_command", "shell", "run_shell_command")
"""Names of the shell tools of Claude Code, Codex (unified exec, then the classic one) and Gemini CLI."""


def count_tokens(text: str) -> int:
    """About four characters a token, at least one for any text."""
    return math.ceil(len(text) / 4) if text else 0


def digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


@dataclass
class Exchange:
    """One request the server got, and what it answered."""

    method: str
    path: str
    """The path without the query."""
    query: dict[str, str]
    headers: dict[str, str]
    body: Any
    """The JSON body (None when there was none or it was not JSON)."""
    status: int = 200
    kind: str = ""
    """`tool_call`, `final`, `truncated`, `router`, `side`, `json`, `probe`, `count_tokens`,
    `not_found`, `error`."""
    model: str = ""
    usage: dict[str, int] = field(default_factory=dict)
    """What the fake model billed: `input_tokens`, `output_tokens`."""
    reply_text: str = ""
    tool_command: str = ""
    finish_reason: str = ""
    """Finish reason in the vendor's words (`tool_use`, `end_turn`, `max_tokens`, `completed`,
    `max_output_tokens`, `STOP`, `MAX_TOKENS`)."""
    at: float = field(default_factory=time.time)

    def summary(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "kind": self.kind,
            "model": self.model,
            "usage": self.usage,
            "finish_reason": self.finish_reason,
            "tool_command": self.tool_command,
        }


@dataclass
class Reply:
    status: int = 200
    content_type: str = "application/json"
    body: bytes = b""


def json_reply(payload: Any, status: int = 200) -> Reply:
    return Reply(status, "application/json", json.dumps(payload).encode())


def sse_reply(events: list[tuple[str | None, Any]]) -> Reply:
    """Server-sent events, each `(event name or None, data)`; the whole stream is sent at once."""
    chunks = []
    for name, data in events:
        head = f"event: {name}\n" if name else ""
        chunks.append(f"{head}data: {json.dumps(data)}\n\n")
    return Reply(200, "text/event-stream", "".join(chunks).encode())


def read_body(handler: BaseHTTPRequestHandler) -> bytes:
    """The request body, with `Transfer-Encoding: chunked` and gzip/deflate content encoding undone."""
    if "chunked" in (handler.headers.get("Transfer-Encoding") or "").lower():
        parts = []
        while True:
            size_line = handler.rfile.readline(1024)
            size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
            if size == 0:
                while handler.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                break
            parts.append(handler.rfile.read(size))
            handler.rfile.readline(16)
        raw = b"".join(parts)
    else:
        raw = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
    encoding = (handler.headers.get("Content-Encoding") or "").lower()
    if encoding == "gzip":
        raw = gzip.decompress(raw)
    elif encoding == "deflate":
        raw = zlib.decompress(raw)
    elif encoding == "zstd":
        import zstandard  # only if a client compresses with zstd; not needed so far

        raw = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    return raw


class _Handler(BaseHTTPRequestHandler):
    server: ScriptedHTTPServer
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        raw = read_body(self) if self.command not in ("GET", "HEAD") else b""
        parts = urlsplit(self.path)
        query = {k: v[-1] for k, v in parse_qs(parts.query).items()}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        exchange = Exchange(
            method=self.command,
            path=parts.path,
            query=query,
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        try:
            reply = self.server.answer(exchange, raw)
        except Exception as exc:
            exchange.kind = "error"
            reply = json_reply({"error": {"message": f"{type(exc).__name__}: {exc}"}}, 500)
        exchange.status = reply.status
        self.server.record(exchange)
        self.send_response(reply.status)
        self.send_header("Content-Type", reply.content_type)
        self.send_header("Content-Length", str(len(reply.body)))
        if reply.content_type == "text/event-stream":
            self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(reply.body)

    do_GET = do_POST = do_HEAD = do_PUT = do_DELETE = _serve

    def log_message(self, format: str, *args: Any) -> None:
        if self.server.verbose:
            super().log_message(format, *args)


class LoopbackServer(ThreadingHTTPServer):
    """A threaded HTTP server on loopback, started on a thread of its own and stopped with it."""

    daemon_threads = True

    def __init__(self, handler: type[BaseHTTPRequestHandler], port: int = 0, host: str = "127.0.0.1") -> None:
        super().__init__((host, port), handler)
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        """A client that hangs up mid-answer (a CLI exiting while it exports) is not an error here."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)

    def start(self) -> Self:
        self._thread = threading.Thread(target=self.serve_forever, name=type(self).__name__, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self.shutdown()
            self._thread.join(5)
            self._thread = None
        self.server_close()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


class ScriptedHTTPServer(LoopbackServer):
    """A loopback HTTP server that records every exchange; subclasses answer them (`answer`)."""

    vendor: ClassVar[str] = ""

    def __init__(self, port: int = 0, host: str = "127.0.0.1", verbose: bool = False) -> None:
        super().__init__(_Handler, port, host)
        self.verbose = verbose
        self.requests: list[Exchange] = []

    def record(self, exchange: Exchange) -> None:
        with self._lock:
            self.requests.append(exchange)

    def answer(self, exchange: Exchange, raw: bytes) -> Reply:
        raise NotImplementedError


class FakeModelServer(ScriptedHTTPServer):
    """A scripted model: `scenario` picks what it does; `model_turns()` are the agent's model calls."""

    def __init__(self, scenario: str | Scenario = "happy", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.scenario = scenario if isinstance(scenario, Scenario) else SCENARIOS[scenario]

    def model_turns(self) -> list[Exchange]:
        """The exchanges that were model calls of the agent's own loop (tool call and final answer)."""
        return [e for e in self.requests if e.kind in ("tool_call", "final", "truncated")]

    def billed(self, kinds: tuple[str, ...] | None = None) -> dict[str, int]:
        """Tokens billed over all model calls (or those of the given kinds)."""
        totals = {"input_tokens": 0, "output_tokens": 0, "calls": 0}
        for e in self.requests:
            if e.usage and (kinds is None or e.kind in kinds):
                totals["input_tokens"] += e.usage.get("input_tokens", 0)
                totals["output_tokens"] += e.usage.get("output_tokens", 0)
                totals["calls"] += 1
        return totals

    def next_turn(self, tool_results: int, offered: set[str]) -> tuple[str, str]:
        """(kind, text or command): the scripted model's next move."""
        shell = next((name for name in SHELL_TOOLS if name in offered), None)
        if shell is None:
            return "side", SIDE_ANSWER
        if tool_results == 0:
            return "tool_call", self.scenario.command
        if self.scenario.truncated:
            return "truncated", self.scenario.final_answer
        return "final", self.scenario.final_answer


# --------------------------------------------------------------------------- Anthropic (Claude Code)


class FakeAnthropicServer(FakeModelServer):
    """The Anthropic Messages API, streaming and not, for Claude Code (`ANTHROPIC_BASE_URL=url`)."""

    vendor = "anthropic"

    def answer(self, exchange: Exchange, raw: bytes) -> Reply:
        if exchange.method in ("HEAD", "GET") and exchange.path in ("/", ""):
            exchange.kind = "probe"
            return json_reply({})
        if exchange.method == "POST" and exchange.path == "/v1/messages/count_tokens":
            exchange.kind = "count_tokens"
            return json_reply({"input_tokens": count_tokens(raw.decode(errors="replace"))})
        if exchange.method != "POST" or exchange.path != "/v1/messages":
            exchange.kind = "not_found"
            return json_reply({"type": "error", "error": {"type": "not_found_error", "message": "no"}}, 404)
        body = exchange.body or {}
        model = str(body.get("model", "claude-fake"))
        messages = body.get("messages") or []
        results = sum(
            1
            for m in messages
            if isinstance(m.get("content"), list)
            for block in m["content"]
            if isinstance(block, dict) and block.get("type") == "tool_result"
        )
        offered = {t.get("name") for t in body.get("tools") or () if isinstance(t, dict)}
        kind, text = self.next_turn(results, offered)
        message_id = "msg_" + digest(self.vendor, messages)[:24]
        input_tokens = count_tokens(raw.decode(errors="replace"))
        if kind == "tool_call":
            tool_id = "toolu_" + digest("tool", messages)[:24]
            arguments = {"command": text, "description": "Write hello to out.txt"}
            content = [
                {"type": "text", "text": "I will write the file with the shell."},
                {"type": "tool_use", "id": tool_id, "name": "Bash", "input": arguments},
            ]
            stop_reason = "tool_use"
            exchange.tool_command = text
        else:
            stop_reason = "max_tokens" if kind == "truncated" else "end_turn"
            content = [{"type": "text", "text": text}]
            exchange.reply_text = text
        output_tokens = sum(count_tokens(json.dumps(block)) for block in content)
        exchange.kind, exchange.model, exchange.finish_reason = kind, model, stop_reason
        exchange.usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        usage = {
            "input_tokens": input_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": 0,
            "output_tokens": output_tokens,
        }
        message = {
            "id": message_id,
            "type": "message",
            "role": "assistant",
            "model": model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return json_reply(message)
        events: list[tuple[str | None, Any]] = [
            (
                "message_start",
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": {**usage, "output_tokens": 1},
                    },
                },
            )
        ]
        for index, block in enumerate(content):
            if block["type"] == "text":
                start = {"type": "text", "text": ""}
                delta = {"type": "text_delta", "text": block["text"]}
            else:
                start = {**block, "input": {}}
                delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
            events += [
                (
                    "content_block_start",
                    {"type": "content_block_start", "index": index, "content_block": start},
                ),
                ("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}),
                ("content_block_stop", {"type": "content_block_stop", "index": index}),
            ]
        events += [
            (
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_reason, "stop_sequence": None},
                    "usage": {"output_tokens": output_tokens},
                },
            ),
            ("message_stop", {"type": "message_stop"}),
        ]
        return sse_reply(events)


# --------------------------------------------------------------------------- OpenAI Responses (Codex)


class FakeOpenAIResponsesServer(FakeModelServer):
    """The OpenAI Responses API (SSE) for Codex (`model_providers.X.base_url = url + "/v1"`)."""

    vendor = "openai"

    def answer(self, exchange: Exchange, raw: bytes) -> Reply:
        if exchange.method == "GET" and exchange.path == "/v1/models":
            exchange.kind = "probe"
            return json_reply({"object": "list", "data": [{"id": "gpt-fake", "object": "model"}]})
        if exchange.method == "POST" and exchange.path.startswith("/v1/analytics/"):
            exchange.kind = "analytics"  # Codex posts turn costs to the provider even with analytics off
            return json_reply({})
        if exchange.method != "POST" or exchange.path != "/v1/responses":
            exchange.kind = "not_found"
            return json_reply(
                {"error": {"message": f"Unknown path {exchange.path}", "type": "not_found"}}, 404
            )
        body = exchange.body or {}
        model = str(body.get("model", "gpt-fake"))
        items = body.get("input") or []
        if isinstance(items, str):
            items = [{"type": "message", "role": "user", "content": items}]
        results = sum(
            1
            for i in items
            if isinstance(i, dict) and i.get("type") in ("function_call_output", "custom_tool_call_output")
        )
        offered = {t.get("name") for t in body.get("tools") or () if isinstance(t, dict)}
        kind, text = self.next_turn(results, offered)
        response_id = "resp_" + digest(self.vendor, items)[:24]
        input_tokens = count_tokens(raw.decode(errors="replace"))
        if kind == "tool_call":
            name = next(n for n in SHELL_TOOLS if n in offered)
            arguments = {"cmd": text} if name == "exec_command" else {"command": ["bash", "-lc", text]}
            item: dict[str, Any] = {
                "type": "function_call",
                "id": "fc_" + digest("fc", items)[:24],
                "call_id": "call_" + digest("call", items)[:24],
                "name": name,
                "arguments": json.dumps(arguments),
                "status": "completed",
            }
            output_tokens = count_tokens(item["arguments"]) + 1
            exchange.tool_command = text
            status, finish = "completed", "completed"
        else:
            item = {
                "type": "message",
                "id": "msg_" + digest("msg", items)[:24],
                "role": "assistant",
                "status": "incomplete" if kind == "truncated" else "completed",
                "content": [{"type": "output_text", "text": text, "annotations": []}],
            }
            output_tokens = count_tokens(text)
            exchange.reply_text = text
            status, finish = (
                ("incomplete", "max_output_tokens") if kind == "truncated" else ("completed", "completed")
            )
        exchange.kind, exchange.model, exchange.finish_reason = kind, model, finish
        exchange.usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        usage = {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": input_tokens + output_tokens,
        }
        response: dict[str, Any] = {
            "id": response_id,
            "object": "response",
            "created_at": int(time.time()),
            "status": "in_progress",
            "model": model,
            "output": [],
            "usage": None,
            "incomplete_details": None,
        }
        seq = iter(range(1_000))

        def event(name: str, **data: Any) -> tuple[str, Any]:
            return name, {"type": name, "sequence_number": next(seq), **data}

        events = [
            event("response.created", response=response),
            event("response.in_progress", response=response),
        ]
        if item["type"] == "function_call":
            events += [
                event(
                    "response.output_item.added",
                    output_index=0,
                    item={**item, "arguments": "", "status": "in_progress"},
                ),
                event(
                    "response.function_call_arguments.delta",
                    item_id=item["id"],
                    output_index=0,
                    delta=item["arguments"],
                ),
                event(
                    "response.function_call_arguments.done",
                    item_id=item["id"],
                    output_index=0,
                    arguments=item["arguments"],
                ),
                event("response.output_item.done", output_index=0, item=item),
            ]
        else:
            part = item["content"][0]
            where = {"item_id": item["id"], "output_index": 0, "content_index": 0}
            events += [
                event(
                    "response.output_item.added",
                    output_index=0,
                    item={**item, "status": "in_progress", "content": []},
                ),
                event("response.content_part.added", **where, part={**part, "text": ""}),
                event("response.output_text.delta", **where, delta=text),
                event("response.output_text.done", **where, text=text),
                event("response.content_part.done", **where, part=part),
                event("response.output_item.done", output_index=0, item=item),
            ]
        final = {**response, "status": status, "output": [item], "usage": usage}
        if status == "incomplete":
            final["incomplete_details"] = {"reason": "max_output_tokens"}
            events.append(event("response.incomplete", response=final))
        else:
            events.append(event("response.completed", response=final))
        return sse_reply(events)


# --------------------------------------------------------------------------- Gemini (Gemini CLI)


def _schema_instance(schema: Any) -> Any:
    """A small value that satisfies a JSON schema (enough for Gemini CLI's JSON side questions)."""
    if not isinstance(schema, dict):
        return None
    kind = str(schema.get("type", "object")).lower()
    if "enum" in schema:
        return schema["enum"][0]
    if kind == "object":
        props = schema.get("properties") or {}
        return {name: _schema_instance(sub) for name, sub in props.items()}
    if kind == "array":
        return []
    if kind in ("integer", "number"):
        low = schema.get("minimum", 1)
        return max(int(low), 1)
    if kind == "boolean":
        return False
    return "fake"


class FakeGeminiServer(FakeModelServer):
    """The Gemini API for Gemini CLI (`GOOGLE_GEMINI_BASE_URL=url`)."""

    vendor = "gemini"

    ROUTER_SCORE = 20
    """The model router's `complexity_score` (Gemini CLI wants one between 1 and 100)."""

    def answer(self, exchange: Exchange, raw: bytes) -> Reply:
        path = exchange.path
        model, _, method = path.rpartition("/")[2].partition(":")
        exchange.model = model
        if exchange.method != "POST" or method not in (
            "generateContent",
            "streamGenerateContent",
            "countTokens",
        ):
            exchange.kind = "not_found"
            return json_reply(
                {"error": {"code": 404, "message": f"Unknown path {path}", "status": "NOT_FOUND"}}, 404
            )
        body = exchange.body or {}
        input_tokens = count_tokens(raw.decode(errors="replace"))
        if method == "countTokens":
            exchange.kind = "count_tokens"
            return json_reply({"totalTokens": input_tokens})
        if method == "generateContent":
            return self._generate(exchange, body, input_tokens)
        contents = body.get("contents") or []
        results = sum(
            1
            for c in contents
            for p in c.get("parts") or ()
            if isinstance(p, dict) and "functionResponse" in p
        )
        offered = {
            d.get("name")
            for tool in body.get("tools") or ()
            for d in (tool.get("functionDeclarations") or ())
            if isinstance(d, dict)
        }
        kind, text = self.next_turn(results, offered)
        if kind == "tool_call":
            parts: list[dict[str, Any]] = [
                {
                    "functionCall": {
                        "name": "run_shell_command",
                        "args": {"command": text, "description": "Write out.txt"},
                    }
                }
            ]
            exchange.tool_command = text
            output_tokens = count_tokens(json.dumps(parts))
            finish = "STOP"
        else:
            parts = [{"text": text}]
            exchange.reply_text = text
            output_tokens = count_tokens(text)
            finish = "MAX_TOKENS" if kind == "truncated" else "STOP"
        exchange.kind, exchange.finish_reason = kind, finish
        exchange.usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        usage = {
            "promptTokenCount": input_tokens,
            "candidatesTokenCount": output_tokens,
            "totalTokenCount": input_tokens + output_tokens,
        }
        response_id = digest(self.vendor, contents)[:20]
        if exchange.query.get("alt") != "sse":
            return json_reply(
                [
                    {
                        "candidates": [
                            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
                        ],
                        "usageMetadata": usage,
                        "modelVersion": model,
                        "responseId": response_id,
                    }
                ]
            )
        return sse_reply(
            [
                (
                    None,
                    {
                        "candidates": [
                            {"content": {"role": "model", "parts": parts}, "finishReason": finish, "index": 0}
                        ],
                        "usageMetadata": usage,
                        "modelVersion": model,
                        "responseId": response_id,
                    },
                )
            ]
        )

    def _generate(self, exchange: Exchange, body: dict[str, Any], input_tokens: int) -> Reply:
        """A JSON side question: the model router (`complexity_score`) or another JSON-schema answer."""
        config = body.get("generationConfig") or body.get("config") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        if schema is not None:
            answer = _schema_instance(schema)
            if isinstance(answer, dict) and "complexity_score" in answer:
                exchange.kind = "router"
                answer["complexity_score"] = self.ROUTER_SCORE
                answer["complexity_reasoning"] = "A one-step shell task."
            else:
                exchange.kind = "json"
            text = json.dumps(answer)
        else:
            exchange.kind = "side"
            text = SIDE_ANSWER
        output_tokens = count_tokens(text)
        exchange.reply_text, exchange.finish_reason = text, "STOP"
        exchange.usage = {"input_tokens": input_tokens, "output_tokens": output_tokens}
        return json_reply(
            {
                "candidates": [
                    {
                        "content": {"role": "model", "parts": [{"text": text}]},
                        "finishReason": "STOP",
                        "index": 0,
                    }
                ],
                "usageMetadata": {
                    "promptTokenCount": input_tokens,
                    "candidatesTokenCount": output_tokens,
                    "totalTokenCount": input_tokens + output_tokens,
                },
                "modelVersion": exchange.model,
                "responseId": digest("json", body)[:20],
            }
        )


SERVERS: dict[str, type[FakeModelServer]] = {
    "claude": FakeAnthropicServer,
    "codex": FakeOpenAIResponsesServer,
    "gemini": FakeGeminiServer,
}
"""The fake model server of each CLI."""
