"""What a model's answer over plain HTTP says: the body a program read of a model-API response
(`http_hook`), described as the GenAI attributes of an LLM span.

Read: JSON in the shape of OpenAI chat / text completions, the OpenAI Responses API, Anthropic
Messages, Gemini (`generateContent`, and a streamed JSON array) and Ollama; Server-Sent Events
(`data:` lines) of OpenAI chat chunks, Anthropic's stream events, Responses' `response.completed` /
`response.incomplete` / `response.failed` events and Gemini; Ollama's newline-delimited JSON. An
answer is described only when it says how it finished (a finish or stop reason, or a Responses
status): anything else (an error body, an unknown shape, a stream cut before its end) is None, and
the gate then fails closed. No content is kept: the model, the finish reason as the provider
said it, the token counts and the names and ids of the tools the model asked for.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from typing import Any


@dataclasses.dataclass
class Answer:
    """What one model answer said about itself."""

    provider: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    operation: str = "chat"
    tool_calls: list[tuple[str | None, str]] = dataclasses.field(default_factory=list)


def describe(body: bytes, content_type: str = "", *, ended: bool = True) -> Answer | None:
    """The answer in `body`, else None. `ended` False: the program stopped reading before the end
    of the body, and only a stream that already said how it finished is an answer."""
    streamed = "event-stream" in content_type or body.lstrip()[:6] in (b"data:", b"event:")
    if streamed:
        chunks: list[Any] = list(_sse(body))
    else:
        try:
            whole = json.loads(body)
            if not ended:
                return None
            chunks = whole if isinstance(whole, list) else [whole]
        except ValueError:
            chunks = list(_ndjson(body))
    answer = Answer()
    for chunk in chunks:
        if isinstance(chunk, dict):
            _merge(answer, chunk)
    return answer if answer.finish_reason else None


def _sse(body: bytes) -> Iterator[Any]:
    data: list[str] = []
    for line in [*body.decode("utf-8", "replace").splitlines(), ""]:
        if line.startswith("data:"):
            data.append(line[5:].removeprefix(" "))
        elif not line.strip() and data:
            text, data = "\n".join(data), []
            if text.strip() != "[DONE]":
                try:
                    yield json.loads(text)
                except ValueError:
                    continue


def _ndjson(body: bytes) -> Iterator[Any]:
    for line in body.splitlines():
        if line.strip():
            try:
                yield json.loads(line)
            except ValueError:
                return


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _or(new: int | None, old: int | None) -> int | None:
    return old if new is None else new


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _merge(answer: Answer, chunk: dict[str, Any]) -> None:
    """Fold one JSON object (a whole answer or one chunk of a stream) into `answer`."""
    kind = chunk.get("type")
    if isinstance(chunk.get("choices"), list):  # OpenAI chat / text completions, whole or a chunk
        answer.provider = "openai"
        answer.model = _str(chunk.get("model")) or answer.model
        if chunk.get("object") in ("text_completion", "text_completion.chunk"):
            answer.operation = "text_completion"
        for choice in _list(chunk["choices"])[:1]:
            answer.finish_reason = _str(_dict(choice).get("finish_reason")) or answer.finish_reason
            message = _dict(_dict(choice).get("message") or _dict(choice).get("delta"))
            for call in _list(message.get("tool_calls")):
                name = _str(_dict(_dict(call).get("function")).get("name"))
                if name:
                    answer.tool_calls.append((_str(_dict(call).get("id")), name))
        usage = _dict(chunk.get("usage"))
        answer.input_tokens = _or(_int(usage.get("prompt_tokens")), answer.input_tokens)
        answer.output_tokens = _or(_int(usage.get("completion_tokens")), answer.output_tokens)
    elif chunk.get("object") == "response" or (kind is None and "output" in chunk and "status" in chunk):
        _responses(answer, chunk)
    elif kind in ("response.completed", "response.incomplete", "response.failed"):
        _responses(answer, _dict(chunk.get("response")))
    elif kind in ("message", "message_start", "message_delta", "content_block_start"):  # Anthropic
        answer.provider = "anthropic"
        message = _dict(chunk.get("message")) if kind == "message_start" else chunk
        answer.model = _str(message.get("model")) or answer.model
        stop = (
            message.get("stop_reason") if kind == "message" else _dict(chunk.get("delta")).get("stop_reason")
        )
        answer.finish_reason = _str(stop) or answer.finish_reason
        blocks = (
            [chunk.get("content_block")] if kind == "content_block_start" else _list(message.get("content"))
        )
        for block in map(_dict, blocks):
            if block.get("type") == "tool_use" and _str(block.get("name")):
                answer.tool_calls.append((_str(block.get("id")), block["name"]))
        usage = _dict(message.get("usage")) or _dict(chunk.get("usage"))
        answer.input_tokens = _or(_int(usage.get("input_tokens")), answer.input_tokens)
        answer.output_tokens = _or(_int(usage.get("output_tokens")), answer.output_tokens)
    elif isinstance(chunk.get("candidates"), list):  # Gemini
        answer.provider = "gcp.gemini"
        answer.model = _str(chunk.get("modelVersion")) or answer.model
        for candidate in map(_dict, _list(chunk["candidates"])[:1]):
            answer.finish_reason = _str(candidate.get("finishReason")) or answer.finish_reason
            for part in map(_dict, _list(_dict(candidate.get("content")).get("parts"))):
                name = _str(_dict(part.get("functionCall")).get("name"))
                if name:
                    answer.tool_calls.append((None, name))
        usage = _dict(chunk.get("usageMetadata"))
        answer.input_tokens = _or(_int(usage.get("promptTokenCount")), answer.input_tokens)
        answer.output_tokens = _or(_int(usage.get("candidatesTokenCount")), answer.output_tokens)
    elif isinstance(chunk.get("done"), bool) and "model" in chunk:  # Ollama
        answer.provider = "ollama"
        answer.model = _str(chunk.get("model")) or answer.model
        if chunk["done"]:
            answer.finish_reason = _str(chunk.get("done_reason")) or "stop"
        answer.input_tokens = _or(_int(chunk.get("prompt_eval_count")), answer.input_tokens)
        answer.output_tokens = _or(_int(chunk.get("eval_count")), answer.output_tokens)


def _responses(answer: Answer, response: dict[str, Any]) -> None:
    """The OpenAI Responses API: no finish reason, a status. Cut off: `incomplete_details.reason`
    (max_output_tokens, content_filter); asking for tools: `tool_calls`; failed: `error`."""
    answer.provider = "openai"
    answer.model = _str(response.get("model")) or answer.model
    calls = [
        _dict(item) for item in _list(response.get("output")) if _dict(item).get("type") == "function_call"
    ]
    answer.tool_calls += [(_str(c.get("call_id")), c["name"]) for c in calls if _str(c.get("name"))]
    status = response.get("status")
    if status == "incomplete":
        answer.finish_reason = _str(_dict(response.get("incomplete_details")).get("reason")) or "incomplete"
    elif status == "completed":
        answer.finish_reason = "tool_calls" if calls else "completed"
    elif status == "failed":
        answer.finish_reason = "error"
    usage = _dict(response.get("usage"))
    answer.input_tokens = _or(_int(usage.get("input_tokens")), answer.input_tokens)
    answer.output_tokens = _or(_int(usage.get("output_tokens")), answer.output_tokens)
