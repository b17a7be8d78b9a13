"""A hand-written OpenAI SDK agent with two file tools and its own retry: the client has
max_retries=0, and a RateLimitError is retried by the agent after a short pause (at most 3 tries).
The first call is answered HTTP 429; the second try succeeds and the run goes on."""

import json
import time
from pathlib import Path

from openai import OpenAI, RateLimitError

client = OpenAI(max_retries=0)
TOOLS = {
    "list_files": lambda: json.dumps(sorted(p.name for p in Path(".").iterdir() if p.suffix == ".md")),
    "read_file": lambda path: Path(path).read_text(),
}
schemas = [
    {
        "type": "function",
        "function": {
            "name": "list_files",
            "description": "The Markdown files here.",
            "parameters": {"type": "object", "properties": {}},
        },
    },
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
    },
]
messages = [{"role": "user", "content": "How many hammers are in the inventory?"}]
while True:
    for attempt in range(3):
        try:
            reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
            break
        except RateLimitError as exc:
            print(f"rate limited ({exc.status_code}), retrying in {0.2 * 2**attempt:.1f} s")
            time.sleep(0.2 * 2**attempt)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    for call in message.tool_calls:
        result = TOOLS[call.function.name](**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
print(message.content)
