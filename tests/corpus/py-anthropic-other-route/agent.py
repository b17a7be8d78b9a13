"""A hand-written Anthropic SDK agent with a Bash tool. The model first reads .nvmrc, which does not
exist (cat exits 1, sent back as an error result); it sees the error, greps the engines field of
package.json instead, then answers."""

import subprocess

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
messages: list = [{"role": "user", "content": "Which Node version does package.json require?"}]
while True:
    reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, tools=tools, messages=messages)
    messages.append({"role": "assistant", "content": reply.content})
    calls = [block for block in reply.content if block.type == "tool_use"]
    if not calls:
        break
    results = []
    for call in calls:
        done = subprocess.run(call.input["command"], shell=True, capture_output=True, text=True, check=False)
        output = done.stdout + done.stderr or "(no output)"
        results.append(
            {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": output,
                "is_error": done.returncode != 0,
            }
        )
    messages.append({"role": "user", "content": results})
print("".join(block.text for block in reply.content if block.type == "text"))
