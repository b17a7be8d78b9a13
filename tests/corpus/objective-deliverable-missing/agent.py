"""A hand-written Anthropic SDK agent with a Bash tool and a write_file tool. Asked to triage the open
issues into TRIAGE.md, the model reads issues.json, then answers in text that it has written TRIAGE.md
without ever calling write_file. The agent prints the answer and exits 0; TRIAGE.md does not exist."""

import subprocess
from pathlib import Path

import anthropic


def run_tool(name: str, arguments: dict) -> str:
    if name == "write_file":
        Path(arguments["path"]).write_text(arguments["content"])
        return f"wrote {len(arguments['content'])} characters to {arguments['path']}"
    done = subprocess.run(arguments["command"], shell=True, capture_output=True, text=True, check=False)
    return done.stdout + done.stderr or "(no output)"


def schema(name: str, description: str, **properties: str) -> dict:
    return {
        "name": name,
        "description": description,
        "input_schema": {
            "type": "object",
            "properties": {key: {"type": "string", "description": text} for key, text in properties.items()},
            "required": list(properties),
        },
    }


tools = [
    schema("Bash", "Run a shell command; returns its output.", command="The command."),
    schema("write_file", "Write a file.", path="Where.", content="The whole new content."),
]
client = anthropic.Anthropic()
task = "Triage the open issues in issues.json and write TRIAGE.md: which to fix first, and why."
messages: list = [{"role": "user", "content": task}]
for _ in range(8):
    reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, tools=tools, messages=messages)
    messages.append({"role": "assistant", "content": reply.content})
    calls = [block for block in reply.content if block.type == "tool_use"]
    if not calls:
        break
    results = [
        {"type": "tool_result", "tool_use_id": call.id, "content": run_tool(call.name, call.input)}
        for call in calls
    ]
    messages.append({"role": "user", "content": results})
print("".join(block.text for block in reply.content if block.type == "text"))
