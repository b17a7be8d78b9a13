"""A hand-written Anthropic SDK agent with a Bash tool and a budget of 3 model turns. The model's
third answer asks for one more command (tool_use); the agent is out of turns, does not run it, and
prints the model's text so far (exit 0)."""

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
messages: list = [
    {"role": "user", "content": "Rename the function load_cfg to load_config everywhere in src/."}
]
for turn in range(3):
    reply = client.messages.create(model="claude-sonnet-4-5", max_tokens=1024, tools=tools, messages=messages)
    messages.append({"role": "assistant", "content": reply.content})
    calls = [block for block in reply.content if block.type == "tool_use"]
    if not calls or turn == 2:
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
print("".join(block.text for block in reply.content if block.type == "text"))
