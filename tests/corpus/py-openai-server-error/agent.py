"""A hand-written OpenAI SDK agent with a file tool. After its first tool call the API answers HTTP
500 three times; the SDK retries twice (its default), then raises InternalServerError, which the
agent does not catch: it dies with a traceback (exit 1)."""

import json
from pathlib import Path

from openai import OpenAI

client = OpenAI()
schemas = [
    {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "The text of a file.",
            "parameters": {
                "type": "object",
                "properties": {"path": {"type": "string"}},
                "required": ["path"],
            },
        },
    }
]
messages: list = [{"role": "user", "content": "Translate index.md's title into German."}]
while True:
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    for call in message.tool_calls:
        result = Path(json.loads(call.function.arguments)["path"]).read_text()
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
print(message.content)
