"""A hand-written OpenAI SDK agent with one `sh` tool whose output it cuts at 700 characters (to keep
the context small). Asked to document the pending migrations, the model cats all four at once; the
cut drops 004_invoices.sql, and the model writes MIGRATIONS.md about the three tables it saw."""

import json
import subprocess
from pathlib import Path

from openai import OpenAI

MAX_OUTPUT = 700

schemas = [
    {
        "type": "function",
        "function": {
            "name": "sh",
            "description": f"Run a shell command; returns its output (at most {MAX_OUTPUT} characters).",
            "parameters": {"type": "object", "properties": {"cmd": {"type": "string"}}, "required": ["cmd"]},
        },
    }
]


def sh(cmd: str) -> str:
    done = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, check=False)
    return f"exit {done.returncode}\n{done.stdout}{done.stderr}"[:MAX_OUTPUT]


client = OpenAI()
task = (
    "Write MIGRATIONS.md for the release: for every table the pending migrations in migrations/ change, "
    "say what changes and how to roll it back."
)
messages: list = [{"role": "user", "content": task}]
for _ in range(6):
    reply = client.chat.completions.create(model="gpt-4o-mini", messages=messages, tools=schemas)
    message = reply.choices[0].message
    messages.append(message.model_dump(exclude_none=True))
    if not message.tool_calls:
        break
    for call in message.tool_calls:
        result = sh(**json.loads(call.function.arguments))
        messages.append({"role": "tool", "tool_call_id": call.id, "content": result})
Path("MIGRATIONS.md").write_text(message.content + "\n")
print("wrote MIGRATIONS.md")
