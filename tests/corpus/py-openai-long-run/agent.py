"""A hand-written OpenAI SDK agent with a shell tool, on a long task: the model takes 15 turns, each
running one command (look around, count, grep, write the summary), then answers. 31 steps, all
fine."""

import json
import subprocess

from openai import OpenAI

client = OpenAI()
schemas = [
    {
        "type": "function",
        "function": {
            "name": "sh",
            "description": "Run a shell command.",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        },
    }
]
messages = [
    {"role": "system", "content": "You are a careful code reviewer. Use the shell."},
    {"role": "user", "content": "Write SUMMARY.md: Python files and lines in src/, and the TODOs."},
]
for _turn in range(40):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    for call in message.tool_calls:
        cmd = json.loads(call.function.arguments)["cmd"]
        done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": done.stdout + done.stderr})
print(message.content)
