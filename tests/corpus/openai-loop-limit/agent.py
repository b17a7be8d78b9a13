"""A hand-written OpenAI SDK agent with a loop limit of 2 model calls: the model's second answer
asks for another tool call, and the agent stops there and prints what it has (exit 0)."""

import json
import subprocess

from openai import OpenAI

client = OpenAI()
tools = [{"type": "function", "function": {"name": "run", "description": "Run a shell command.",
          "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}}}}]  # fmt: skip
messages = [{"role": "user", "content": "Make the tests pass."}]
for _ in range(2):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=tools)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    if len(messages) > 3:
        break  # the loop limit: the requested call is never made
    for call in message.tool_calls:
        cmd = json.loads(call.function.arguments)["cmd"]
        out = subprocess.run(cmd, shell=True, capture_output=True, text=True, check=False)
        messages.append({"role": "tool", "tool_call_id": call.id, "content": out.stdout + out.stderr})
print("Done:", message.content or "(no answer)")
