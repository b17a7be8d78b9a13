"""Chat messages in the OTel GenAI JSON shape (`{"role", "parts": [...]}`), from common inputs."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any


def _arguments(raw: Any) -> Any:
    if isinstance(raw, str):
        try:
            return json.loads(raw)
        except ValueError:
            return raw
    return raw


def to_genai(message: Mapping[str, Any] | str) -> dict[str, Any]:
    """One message as GenAI `{role, parts}`. Accepts that shape as is, a plain string (a user
    message), or OpenAI chat shape (`content`, `tool_calls`, `tool_call_id`)."""
    if isinstance(message, str):
        return {"role": "user", "parts": [{"type": "text", "content": message}]}
    if "parts" in message:
        return dict(message)
    role = str(message.get("role", "user"))
    parts: list[dict[str, Any]] = []
    content = message.get("content")
    if role == "tool" and message.get("tool_call_id"):
        parts.append({"type": "tool_call_response", "id": message["tool_call_id"], "response": content})
    elif isinstance(content, str) and content:
        parts.append({"type": "text", "content": content})
    elif isinstance(content, list):
        parts.extend(
            {"type": "text", "content": c.get("text", "")}
            if isinstance(c, Mapping)
            else {"type": "text", "content": c}
            for c in content
        )
    for call in message.get("tool_calls") or ():
        function = call.get("function", {})
        parts.append(
            {
                "type": "tool_call",
                "id": call.get("id"),
                "name": function.get("name", call.get("name")),
                "arguments": _arguments(function.get("arguments", call.get("arguments"))),
            }
        )
    out: dict[str, Any] = {"role": role, "parts": parts}
    if message.get("name"):
        out["name"] = message["name"]
    return out


def to_genai_list(messages: Sequence[Mapping[str, Any] | str] | None) -> list[dict[str, Any]] | None:
    return None if messages is None else [to_genai(m) for m in messages]
