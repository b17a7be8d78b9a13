"""A hand-written Anthropic SDK agent with a Bash tool: it reads the changelog and asks the model
for release notes, which it writes to NOTES.md. The model's last answer hit max_tokens mid-sentence;
the agent does not check stop_reason and exits 0."""

import subprocess
from pathlib import Path

import anthropic

client = anthropic.Anthropic()
tools = [
    {
        "name": "Bash",
        "description": "Run a shell command; returns its output.",
        "input_schema": {
            "type": "object",
            "properties": {"command": {"type": "string"}},
            "required": ["command"],
        },
    }
]
messages: list = [{"role": "user", "content": "Write release notes for 2.0 from CHANGELOG.md."}]
while True:
    reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=60, tools=tools, messages=messages)
    messages.append({"role": "assistant", "content": reply.content})
    calls = [block for block in reply.content if block.type == "tool_use"]
    if not calls:
        break
    results = []
    for call in calls:
        done = subprocess.run(call.input["command"], shell=True, capture_output=True, text=True, check=False)
        results.append(
            {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": done.stdout + done.stderr or "(no output)",
            }
        )
    messages.append({"role": "user", "content": results})
Path("NOTES.md").write_text("".join(block.text for block in reply.content if block.type == "text") + "\n")
