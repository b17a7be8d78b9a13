"""Chat messages in the shapes agents have them become GenAI `{role, parts}` messages."""

from __future__ import annotations

from agenttrace.capture.messages import to_genai, to_genai_list


def test_genai_shape_is_kept() -> None:
    message = {"role": "assistant", "parts": [{"type": "text", "content": "hi"}]}
    assert to_genai(message) == message


def test_plain_string_is_a_user_message() -> None:
    assert to_genai("hello") == {"role": "user", "parts": [{"type": "text", "content": "hello"}]}


def test_openai_assistant_tool_calls_keep_ids_and_parse_arguments() -> None:
    message = {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "grep", "arguments": '{"p": "x"}'}},
            {"id": "call_2", "type": "function", "function": {"name": "ls", "arguments": "not json"}},
        ],
    }
    assert to_genai(message) == {
        "role": "assistant",
        "parts": [
            {"type": "tool_call", "id": "call_1", "name": "grep", "arguments": {"p": "x"}},
            {"type": "tool_call", "id": "call_2", "name": "ls", "arguments": "not json"},
        ],
    }


def test_openai_tool_result_becomes_a_tool_call_response() -> None:
    message = {"role": "tool", "tool_call_id": "call_1", "content": "a.py:3"}
    assert to_genai(message) == {
        "role": "tool",
        "parts": [{"type": "tool_call_response", "id": "call_1", "response": "a.py:3"}],
    }


def test_content_lists_and_names() -> None:
    message = {"role": "user", "name": "ann", "content": [{"type": "text", "text": "a"}, "b"]}
    assert to_genai(message) == {
        "role": "user",
        "name": "ann",
        "parts": [{"type": "text", "content": "a"}, {"type": "text", "content": "b"}],
    }
    assert to_genai_list(None) is None
