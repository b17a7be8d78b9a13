"""An agent on the Anthropic SDK alone, with a shell tool, talking to the Anthropic Messages API at
ANTHROPIC_BASE_URL. No agenttrace or OpenTelemetry code: `agenttrace run` instruments it.

    python anthropic_agent.py MODEL TASK
"""

import subprocess
import sys

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
messages: list = [{"role": "user", "content": sys.argv[2]}]
while True:
    reply = client.messages.create(model=sys.argv[1], max_tokens=1024, tools=tools, messages=messages)
    messages.append({"role": "assistant", "content": reply.content})
    calls = [block for block in reply.content if block.type == "tool_use"]
    if not calls:
        break
    results = []
    for call in calls:
        done = subprocess.run(call.input["command"], shell=True, capture_output=True, text=True)
        results.append(
            {
                "type": "tool_result",
                "tool_use_id": call.id,
                "content": done.stdout + done.stderr or "(no output)",
                "is_error": done.returncode != 0,
            }
        )
    messages.append({"role": "user", "content": results})
print("".join(block.text for block in reply.content if block.type == "text"))
