"""A hand-written OpenAI SDK agent with two file tools: it lists the files, reads one, and prints the
model's answer, which was cut off (finish_reason length). The agent does not check and exits 0."""

import json
from pathlib import Path

from openai import OpenAI

client = OpenAI()
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
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    for call in message.tool_calls:
        result = TOOLS[call.function.name](**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
print(message.content)
